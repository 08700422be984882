"""The dashboard in a real browser: time to the first log line, and scrolling 100,000 lines.

One server process (`bench.agents.server`), one finished job whose log has ``--lines`` lines (one
in ten coloured with ANSI SGR codes), and Debian's Chromium driven by Playwright. Each figure is
measured inside the page with the Performance API, side by side and alternating with the baseline:
the plain-text log that `links.web` pointed at before the dashboard (`GET /jobs/{id}/logs`).

- first line: for the dashboard the `raibid:first-line` mark (the first row is in the document),
  for the text page its first contentful paint; both from the navigation's start.
- whole log: the dashboard's `raibid:history` mark (the stream's `ready`: every line received and
  queued for drawing) and the text page's `responseEnd`.
- scrolling: the page scrolls from the top to the bottom of the log at a fixed distance per
  animation frame; each frame's interval comes from `requestAnimationFrame` timestamps. A frame
  that took k vsync periods (16.7 ms) dropped k-1 frames. `long-animation-frame` entries (over
  50 ms) are counted too, and the renderer's main-thread busy time per frame (the DevTools
  protocol's `TaskDuration`), which depends less on what else the machine runs.

    python -m bench.dashboard.run [--lines 100000] [--rounds 3] [--step 600]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, ViewportSize, sync_playwright

from bench.agents.server import AGENT, AGENT_TOKEN, WRITE, WRITE_TOKEN, start_server
from bench.common import format_table, machine_summary

CHROMIUM = "/usr/bin/chromium"
BATCH = 5_000
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}

SCROLL = """
async ({ target, step }) => {
  const box = target === "log"
    ? document.querySelector("[data-testid=log]") : document.scrollingElement;
  const longFrames = [];
  let observer = null;
  if (PerformanceObserver.supportedEntryTypes.includes("long-animation-frame")) {
    observer = new PerformanceObserver((list) => longFrames.push(...list.getEntries()));
    observer.observe({ type: "long-animation-frame" });
  }
  box.scrollTop = 0;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const stamps = [];
  await new Promise((resolve) => {
    const frame = (t) => {
      stamps.push(t);
      if (box.scrollTop + box.clientHeight >= box.scrollHeight - 1) return resolve();
      box.scrollTop += step;
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
  if (observer) observer.disconnect();
  const intervals = stamps.slice(1).map((t, i) => t - stamps[i]);
  return { intervals, longFrames: longFrames.length, lines: box.scrollHeight };
}
"""


def make_job(http: httpx.Client, lines: int) -> str:
    """A finished job whose log has ``lines`` lines; its id."""
    created = http.post(
        "/jobs",
        json={"repo": "bench/dash", "clone_url": "https://git.example.test/b/d.git",
              "branch": "main"},
        headers=WRITE,
    )  # fmt: skip
    created.raise_for_status()
    claim = http.post("/agent/claim", json={"agent_id": "bench", "wait": 0}, headers=AGENT)
    claim.raise_for_status()
    job_id: str = claim.json()["job"]["id"]
    auth = {"Authorization": f"Bearer {claim.json()['token']}"}
    sent = 0
    while sent < lines:
        batch = [
            f"\x1b[1;32mok\x1b[0m line {i}: test_{i} passed" if i % 10 == 0
            else f"line {i}: compiling module_{i}.c -O2 -Wall -Wextra"
            for i in range(sent, min(lines, sent + BATCH))
        ]  # fmt: skip
        answer = http.post(
            f"/agent/jobs/{job_id}/logs", json={"offset": sent, "lines": batch}, headers=auth
        )
        answer.raise_for_status()
        sent += len(batch)
    done = http.post(
        f"/agent/jobs/{job_id}/complete", json={"status": "success", "exit_code": 0}, headers=auth
    )
    done.raise_for_status()
    return job_id


def dropped(intervals: list[float]) -> int:
    """Frames missed: an interval of k vsync periods missed k-1."""
    return sum(max(0, round(i / (1000 / 60)) - 1) for i in intervals)


def measure(page: Page, url: str, kind: str, step: int, lines: int) -> dict[str, float]:
    """Load ``url`` and scroll it through; the figures of one round."""
    page.goto(url, wait_until="commit")
    if kind == "dashboard":
        page.wait_for_function(
            "n => document.querySelector('[data-testid=line-count]')?.textContent === `${n} lines`"
            " && performance.getEntriesByName('raibid:history').length > 0",
            arg=lines + 1, timeout=120_000,  # and the server's own first line
        )  # fmt: skip
        first = page.evaluate("performance.getEntriesByName('raibid:first-line')[0].startTime")
        whole = page.evaluate("performance.getEntriesByName('raibid:history')[0].startTime")
    else:
        page.wait_for_load_state("load", timeout=120_000)
        page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0")
        first = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
        whole = page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    before = main_thread_seconds(cdp.send("Performance.getMetrics"))
    scrolled: dict[str, Any] = page.evaluate(
        SCROLL, {"target": "log" if kind == "dashboard" else "page", "step": step}
    )
    busy = main_thread_seconds(cdp.send("Performance.getMetrics")) - before
    intervals: list[float] = scrolled["intervals"]
    return {
        "first": first,
        "whole": whole,
        "frames": len(intervals),
        "dropped": dropped(intervals),
        "p50": statistics.median(intervals),
        "p99": sorted(intervals)[int(len(intervals) * 0.99)],
        "long": scrolled["longFrames"],
        "busy": busy * 1000 / max(1, len(intervals)),
    }


def main_thread_seconds(metrics: dict[str, Any]) -> float:
    """The renderer main thread's busy time so far (CDP `TaskDuration`), in seconds."""
    return float(next(m["value"] for m in metrics["metrics"] if m["name"] == "TaskDuration"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--step", type=int, default=600, help="pixels scrolled per frame")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"dashboard": [], "text": []}
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(
            Path(folder),
            auth={
                "anonymous_read": True,
                "tokens": [
                    {"name": "writer", "scopes": ["read", "write"], "value": WRITE_TOKEN},
                    {"name": "agent", "scopes": ["agent"], "value": AGENT_TOKEN},
                ],
            },
        )
        try:
            with httpx.Client(base_url=server.base_url, timeout=60) as http:
                job_id = make_job(http, args.lines)
            urls = {
                "dashboard": f"{server.base_url}/ui/jobs/{job_id}",
                "text": f"{server.base_url}/jobs/{job_id}/logs",
            }
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                for _ in range(args.rounds):
                    for kind in ("dashboard", "text"):
                        context = browser.new_context(viewport=VIEWPORT)
                        page = context.new_page()
                        results[kind].append(measure(page, urls[kind], kind, args.step, args.lines))
                        context.close()
                browser.close()
        finally:
            server.stop()
    print_results(args, results)


def print_results(args: argparse.Namespace, results: dict[str, list[dict[str, float]]]) -> None:
    """The medians of each figure, dashboard beside the baseline."""
    print(f"{args.lines} lines, {args.rounds} rounds alternating, {args.step} px per frame")
    print(format_table(["fact", "value"], list(machine_summary().items())))
    names = {
        "first": "first line shown (ms)",
        "whole": "whole log received (ms)",
        "frames": "frames to scroll through",
        "dropped": "dropped frames while scrolling",
        "p50": "frame interval p50 (ms)",
        "p99": "frame interval p99 (ms)",
        "long": "long animation frames (> 50 ms)",
        "busy": "main-thread work per frame (ms)",
    }
    rows = []
    for key, name in names.items():
        new = statistics.median(r[key] for r in results["dashboard"])
        old = statistics.median(r[key] for r in results["text"])
        ratio = f"{new / old:.2f}" if old else "-"
        rows.append([name, f"{new:.1f}", f"{old:.1f}", ratio])
    print(format_table(["median of rounds", "dashboard", "text/plain (before)", "ratio"], rows))
    for kind, rounds in results.items():
        print(kind, [{k: round(v, 1) for k, v in r.items()} for r in rounds])


if __name__ == "__main__":
    main()
