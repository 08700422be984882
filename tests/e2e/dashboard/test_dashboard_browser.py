"""The dashboard in a real browser (Chromium), against a real server process and its Redis.

The browser talks to the server through a proxy the test severs, to see the page come back by
itself and show every line exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.dashboard_server import dashboard_server
from tests.support.http_agent import HttpAgent
from tests.support.polling import eventually_sync
from tests.support.server_process import OPERATOR, OPERATOR_TOKEN, TRIGGER, Server
from tests.support.severable_proxy import SeverableProxy
from tests.support.webhook_deliveries import headers_for, push_body, sha

pytestmark = pytest.mark.e2e

TIMEOUT = 20.0
ATTACKS = (
    "<script>window.__xss = 'script'</script>",
    "<img src=x onerror=\"window.__xss = 'img'\">",
    '"><svg onload="window.__xss = \'svg\'">',
)

# every breach of the Content-Security-Policy the page commits, kept in window.__breaches
WATCH_POLICY = """
window.__breaches = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__breaches.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def open_signed_in(browser: Browser, proxy: SeverableProxy, path: str = "/") -> Page:
    """A tab on ``path`` through the proxy, signed in with the operator's token."""
    page = browser.new_page(viewport={"width": 1280, "height": 1800})
    page.set_default_timeout(TIMEOUT * 1000)
    page.add_init_script(WATCH_POLICY)
    page.goto(proxy.base_url + path)
    expect(page.locator("#notice")).to_contain_text("Sign in")
    page.fill("#login-token", OPERATOR_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#session")).to_be_visible()
    return page


def log_lines(page: Page) -> list[tuple[str, str]]:
    """(number, text) of every line the log shows, read in one go."""
    rows: list[list[str]] = page.locator("[data-testid=log] .line:not(.gap)").evaluate_all(
        "rows => rows.map(r => [r.querySelector('.ln').textContent,"
        " r.querySelector('.lt').textContent])"
    )
    return [(number, text) for number, text in rows]


def shows_lines(page: Page, expected: list[str]) -> bool:
    """Whether the log shows exactly ``expected`` (numbered from 1), nothing twice."""
    return log_lines(page) == [(str(i), text) for i, text in enumerate(expected, 1)]


def test_a_job_appears_live_and_its_log_survives_a_cut_connection(
    server: Server, proxy: SeverableProxy, browser: Browser
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http:
        page = open_signed_in(browser, proxy)
        expect(page.locator(".connection")).to_have_attribute("data-state", "live")
        created = http.post("/jobs", json=TRIGGER, headers=OPERATOR)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        row = page.locator(f'tr[data-job="{job_id}"]')
        expect(row.locator(".badge")).to_have_text("pending")  # came over /events
        expect(row).to_contain_text("#1")  # its queue position
        expect(row).to_contain_text("operator")  # who asked for it
        row.get_by_role("link", name="acme/widgets").click()
        page.wait_for_url(f"**/ui/jobs/{job_id}")
        page.evaluate("window.__sameDocument = true")

        agent = HttpAgent(http, OPERATOR, "browser-agent")
        assert agent.job_id == job_id
        expected = [f"[raibid] attempt 1 started on agent {agent.job['agent_id']}"]
        expected += [f"step {i}" for i in range(5)]
        agent.log(*expected[1:])
        expect(page.get_by_test_id("status")).to_have_text("running")
        eventually_sync(lambda: shows_lines(page, expected), TIMEOUT, "the first lines")

        accepted = proxy.accepted
        assert proxy.sever() > 0  # the browser's stream is cut
        while_cut = [f"written while cut {i}" for i in range(5)]
        agent.log(*while_cut)
        expected += while_cut
        eventually_sync(lambda: proxy.accepted > accepted, TIMEOUT, "the browser to reconnect")
        eventually_sync(lambda: shows_lines(page, expected), TIMEOUT, "the lines sent while cut")
        after = [f"after {i}" for i in range(5)]
        agent.log(*after)
        expected += after
        agent.complete()

        expect(page.get_by_test_id("status")).to_have_text("success")
        expect(page.locator(".connection")).to_have_attribute("data-state", "ended")
        assert shows_lines(page, expected), log_lines(page)
        assert page.evaluate("window.__sameDocument") is True  # no reload
        assert page.evaluate("window.__breaches") == []
        assert page.get_by_test_id("line-count").text_content() == f"{len(expected)} lines"

    targets = proxy.request_targets()
    assert [t for t in targets if OPERATOR_TOKEN in t] == []  # never the API token in a URL
    # once signed in, both streams (the list's and the job's) were opened with stream tokens
    assert [t for t in targets if t.startswith("/events?token=")]
    job_streams = [t for t in targets if t.startswith(f"/events?jobs={job_id}&token=")]
    # the reconnection's old token had expired: a new one, resuming after the last event shown
    assert [t for t in job_streams if "&last_event_id=" in t]


def test_markup_in_a_commit_message_or_a_log_line_is_shown_as_text(
    server: Server, proxy: SeverableProxy, browser: Browser
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http:
        message = " ".join(ATTACKS)
        body = push_body(sha(1), branch="main", message=message)
        delivered = http.post("/webhook/gitea", content=body, headers=headers_for(body))
        assert delivered.status_code in (200, 201, 202), delivered.text
        agent = HttpAgent(http, OPERATOR, "xss-agent")
        agent.log(*ATTACKS, "\x1b[1;31mred and bold\x1b[0m then plain")

        page = open_signed_in(browser, proxy)
        row = page.locator(f'tr[data-job="{agent.job_id}"]')
        expect(row.locator(".message")).to_have_text(message)
        page.goto(f"{proxy.base_url}/ui/jobs/{agent.job_id}")
        expect(page.get_by_test_id("message")).to_have_text(message)
        eventually_sync(
            lambda: (
                [text for _, text in log_lines(page)][1:] == [*ATTACKS, "red and bold then plain"]
            ),
            TIMEOUT,
            "the log lines",
        )
        coloured = page.locator("[data-testid=log] .lt span.fg1.sgr-b")
        expect(coloured).to_have_text("red and bold")

        assert page.evaluate("window.__xss") is None
        assert page.evaluate("window.__breaches") == []  # nothing even tried to run
        assert page.locator("main img, main svg, main script").count() == 0


def test_a_writer_cancels_a_job_then_retries_it_from_its_page(
    server: Server, proxy: SeverableProxy, browser: Browser
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http:
        created = http.post("/jobs", json=TRIGGER, headers=OPERATOR)
        job_id = created.json()["id"]
        page = open_signed_in(browser, proxy, f"/ui/jobs/{job_id}")
        expect(page.get_by_test_id("status")).to_have_text("pending")

        page.get_by_role("button", name="Cancel").click()
        expect(page.get_by_test_id("status")).to_have_text("cancelled")
        assert http.get(f"/jobs/{job_id}", headers=OPERATOR).json()["status"] == "cancelled"

        page.get_by_role("button", name="Retry").click()
        page.wait_for_url("**/ui/jobs/*")
        expect(page.get_by_test_id("status")).to_have_text("pending")
        retried = page.url.rpartition("/")[2]
        assert retried != job_id
        assert http.get(f"/jobs/{retried}", headers=OPERATOR).json()["retry_of"] == job_id


def test_the_dashboard_works_at_phone_width_and_from_the_keyboard(
    server: Server, proxy: SeverableProxy, browser: Browser
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http:
        job_id = http.post("/jobs", json=TRIGGER, headers=OPERATOR).json()["id"]
    page = open_signed_in(browser, proxy)
    page.set_viewport_size({"width": 390, "height": 844})
    row = page.locator(f'tr[data-job="{job_id}"]')
    expect(row).to_be_visible()
    # nothing sticks out sideways: no horizontal scrolling of the page
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # keyboard only: Tab to the job's link, Enter opens its page
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('tr')?.dataset.job") == job_id:
            break
    else:
        pytest.fail("the job's link cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/ui/jobs/{job_id}")
    expect(page.get_by_test_id("status")).to_have_text("pending")
    assert page.get_by_test_id("log").get_attribute("tabindex") == "0"  # scrollable by keys
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


CHECKS = """
async () => {
  const base = document.querySelector("script[type=module]").src.replace(/app\\.js$/, "");
  const { isNewer } = await import(base + "api.js");
  const { plainText, parseAnsi } = await import(base + "ansi.js");
  const { LogView } = await import(base + "logview.js");
  const view = new LogView(() => {});
  view.append(1, "one", "stdout");
  view.append(1, "one again", "stdout");
  view.append(2, "two", "stderr");
  return {
    newer: [isNewer("1-1", "1-0"), isNewer("10-0", "9-9"), isNewer("1-0,2-0", "1-0,1-0"),
            isNewer("18446744073709551615-0", "18446744073709551614-9")],
    repeats: [isNewer("1-0", "1-0"), isNewer("9-9", "10-0"), isNewer("1-0,1-0", "1-0,2-0")],
    plain: [plainText("a\\x1b[2Kb\\x1b]0;title\\x07c"), plainText("50%\\r100%"),
            plainText("x\\x00\\x08y\\tz")],
    colours: [parseAnsi("\\x1b[31mr\\x1b[0m")[0].fg, parseAnsi("\\x1b[38;5;196mr")[0].fg,
              parseAnsi("\\x1b[48;2;1;2;3mr")[0].bg, parseAnsi("\\x1b[1;4mr")[0].bold],
    held: view.count,
  };
}
"""


def test_the_pages_stream_and_colour_logic_in_the_browser(
    proxy: SeverableProxy, browser: Browser
) -> None:
    page = browser.new_page()
    page.goto(proxy.base_url + "/")
    checks = page.evaluate(CHECKS)
    assert checks["newer"] == [True, True, True, True]
    assert checks["repeats"] == [False, False, False]  # an event seen already is dropped
    assert checks["plain"] == ["abc", "100%", "xy\tz"]
    assert checks["colours"] == [1, "rgb(255,0,0)", "rgb(1,2,3)", True]
    assert checks["held"] == 2  # a line number given twice is shown once


def test_a_log_past_max_lines_shows_where_lines_were_dropped(
    tmp_path: Path, browser: Browser
) -> None:
    with (
        dashboard_server(tmp_path, max_lines=100) as server,
        httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http,
    ):
        http.post("/jobs", json=TRIGGER, headers=OPERATOR).raise_for_status()
        agent = HttpAgent(http, OPERATOR, "big-log-agent")
        agent.log(*(f"line {i}" for i in range(2, 301)))
        agent.complete()
        kept = http.get(
            f"/jobs/{agent.job_id}/logs", headers=OPERATOR | {"Accept": "application/json"}
        ).json()
        gaps = [entry["data"]["dropped"] for entry in kept if entry["event"] == "gap"]
        assert len(gaps) == 1

        page = browser.new_page(viewport={"width": 1280, "height": 1800})
        page.set_default_timeout(TIMEOUT * 1000)
        page.goto(f"{server.base_url}/ui/jobs/{agent.job_id}#L1")
        page.fill("#login-token", OPERATOR_TOKEN)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("status")).to_have_text("success")
        expect(page.locator(".line.selected .ln")).to_have_text("1")  # #L1: scrolled to it
        marker = page.locator("[data-testid=log] .line.gap")
        expect(marker).to_have_text(f"[… {gaps[0]} lines dropped …]")
        # the rows in view, in order, are the kept entries with the marker where they were dropped
        expected = [str(e["data"]["n"]) if e["event"] == "log" else "gap" for e in kept
                    if e["event"] != "status"]  # fmt: skip
        shown: list[str] = page.locator("[data-testid=log] .line").evaluate_all(
            "rows => rows.map(r => r.classList.contains('gap') ? 'gap'"
            " : r.querySelector('.ln').textContent)"
        )
        assert "gap" in shown
        start = expected.index(shown[0])
        assert shown == expected[start : start + len(shown)]


CONTRAST = """
() => {
  const rgb = (text) => text.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => v / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const log = document.createElement("div");
  log.className = "log";
  document.body.append(log);
  const found = {};
  const logBg = getComputedStyle(log).backgroundColor;
  for (const cls of [...Array(16).keys()].map((i) => `fg${i}`).concat(["ln", "lt"])) {
    const span = document.createElement("span");
    span.className = cls;
    log.append(span);
    found[cls] = ratio(getComputedStyle(span).color, logBg);
  }
  const pageBg = getComputedStyle(document.documentElement).backgroundColor;
  for (const status of ["pending", "running", "success", "failed", "cancelled"]) {
    const badge = document.createElement("span");
    badge.className = `badge ${status}`;
    document.body.append(badge);
    found[status] = ratio(getComputedStyle(badge).color, pageBg);
  }
  found.text = ratio(getComputedStyle(document.body).color, pageBg);
  return found;
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_and_colours_are_readable_on_their_background(
    proxy: SeverableProxy, browser: Browser, scheme: Literal["light", "dark"]
) -> None:
    page = browser.new_page(color_scheme=scheme)
    page.goto(proxy.base_url + "/")
    ratios: dict[str, float] = page.evaluate(CONTRAST)
    assert len(ratios) == 16 + 2 + 5 + 1
    # WCAG AA for normal text: at least 4.5:1
    assert {name: round(r, 2) for name, r in ratios.items() if r < 4.5} == {}


def test_the_list_filters_by_branch_and_status_and_stays_live(
    server: Server, proxy: SeverableProxy, browser: Browser
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http:
        main = http.post("/jobs", json=TRIGGER, headers=OPERATOR).json()
        page = open_signed_in(browser, proxy)
        expect(page.locator(f'tr[data-job="{main["id"]}"]')).to_be_visible()
        page.get_by_label("Branch").fill("release")
        page.get_by_label("Status").select_option("pending")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator(f'tr[data-job="{main["id"]}"]')).to_have_count(0)
        assert page.url.endswith("/?branch=release&status=pending")

        release = http.post("/jobs", json=TRIGGER | {"branch": "release"}, headers=OPERATOR)
        release_id = release.json()["id"]
        second_main = http.post("/jobs", json=TRIGGER, headers=OPERATOR).json()["id"]
        row = page.locator(f'tr[data-job="{release_id}"]')
        expect(row).to_contain_text("release")
        expect(row).to_contain_text("#2")  # behind the older pending job that is not shown
        cancelled = http.post(f"/jobs/{release_id}/cancel", json={}, headers=OPERATOR)
        assert cancelled.status_code == 200, cancelled.text
        expect(row).to_have_count(0)  # no longer pending: out of this view
        assert page.locator(f'tr[data-job="{second_main}"]').count() == 0
        expect(page.locator(".summary")).to_have_text("No jobs match.")
