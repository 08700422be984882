"""Every client mistake of the jobs API: a 4xx JSON error with a stable code, and nothing written.

Each test takes a snapshot of every key of its deployment before the bad request and compares it
after (``nothing_written``), so a rejected request that still touched Redis fails.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.aliases import SettingsFactory
from tests.support.api import (
    AGENT,
    JSON,
    READ,
    READ_TOKEN,
    WRITE,
    assert_error,
    bearer,
    running_app,
    trigger_body,
)

NothingWritten = Callable[[], AbstractAsyncContextManager[None]]
UNKNOWN_ID = str(uuid.UUID(int=0x1234))
NO_TOKEN: dict[str, str] = {}


@dataclass(frozen=True)
class Stored:
    """Jobs that exist before the bad request: one pending, one cancelled."""

    pending: str
    cancelled: str


@pytest.fixture
async def stored(client: httpx.AsyncClient) -> Stored:
    pending = await client.post("/jobs", headers=WRITE, json=trigger_body())
    doomed = await client.post("/jobs", headers=WRITE, json=trigger_body(branch="dev"))
    cancelled = await client.post(f"/jobs/{doomed.json()['id']}/cancel", headers=WRITE)
    assert (pending.status_code, cancelled.status_code) == (201, 200)
    return Stored(pending.json()["id"], cancelled.json()["id"])


@dataclass(frozen=True)
class Bad:
    """One bad request (its path may name ``{pending}`` or ``{cancelled}``) and its error."""

    method: str
    path: str
    status: int
    code: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    content: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)

    async def send(self, client: httpx.AsyncClient, stored: Stored) -> httpx.Response:
        """Send the request to ``client``, with the ids of ``stored`` filled in."""
        path = self.path.format(pending=stored.pending, cancelled=stored.cancelled)
        if self.body is not None:
            return await client.request(
                self.method, path, headers=self.headers, params=self.params, json=self.body
            )
        return await client.request(
            self.method, path, headers=self.headers, params=self.params, content=self.content
        )


def get(
    path: str, status: int, code: str, /, *, headers: dict[str, str] = READ, **params: str
) -> Bad:
    return Bad("GET", path, status, code, headers=headers, params=params)


def post(
    path: str,
    status: int,
    code: str,
    body: Any = None,
    *,
    headers: dict[str, str] = WRITE,
    content: bytes | None = None,
) -> Bad:
    return Bad("POST", path, status, code, headers=headers, body=body, content=content)


def trigger(status: int, code: str, *, headers: dict[str, str] = WRITE, **overrides: object) -> Bad:
    return post("/jobs", status, code, trigger_body(**overrides), headers=headers)


def other(method: str, path: str, status: int, code: str, headers: dict[str, str]) -> Bad:
    return Bad(method, path, status, code, headers=headers)


CASES = {
    # unknown and malformed ids
    "get-unknown-id": get(f"/jobs/{UNKNOWN_ID}", 404, "job_not_found"),
    "cancel-unknown-id": post(f"/jobs/{UNKNOWN_ID}/cancel", 404, "job_not_found"),
    "retry-unknown-id": post(f"/jobs/{UNKNOWN_ID}/retry", 404, "job_not_found"),
    "get-malformed-id": get("/jobs/not-a-uuid", 400, "invalid_job_id"),
    "get-id-too-long": get("/jobs/{pending}0", 400, "invalid_job_id"),
    "get-id-36-non-hex": get("/jobs/" + "g" * 36, 400, "invalid_job_id"),
    "cancel-malformed-id": post("/jobs/1234/cancel", 400, "invalid_job_id"),
    "retry-malformed-id": post("/jobs/1234/retry", 400, "invalid_job_id"),
    # listing parameters
    "limit-0": get("/jobs", 422, "validation_error", limit="0"),
    "limit-10000": get("/jobs", 422, "validation_error", limit="10000"),
    "limit-201": get("/jobs", 422, "validation_error", limit="201"),
    "limit-negative": get("/jobs", 422, "validation_error", limit="-1"),
    "limit-not-a-number": get("/jobs", 422, "validation_error", limit="ten"),
    "limit-fraction": get("/jobs", 422, "validation_error", limit="1.5"),
    "status-unknown": get("/jobs", 422, "validation_error", status="exploded"),
    "status-upper-case": get("/jobs", 422, "validation_error", status="PENDING"),
    "event-unknown": get("/jobs", 422, "validation_error", event="webhook"),
    "since-not-a-time": get("/jobs", 422, "validation_error", since="yesterday"),
    "since-a-number": get("/jobs", 422, "validation_error", since="0.5"),
    "since-unix-seconds": get("/jobs", 422, "validation_error", since="1764000000"),
    "since-a-date-and-hour": get("/jobs", 422, "validation_error", since="2026-12-05T08"),
    "cursor-garbage": get("/jobs", 400, "invalid_cursor", cursor="garbage"),
    "cursor-bad-base64": get("/jobs", 400, "invalid_cursor", cursor="a.b"),
    "cursor-non-ascii": get("/jobs", 400, "invalid_cursor", cursor="\u00e9t\u00e9.x"),
    "cursor-three-parts": get("/jobs", 400, "invalid_cursor", cursor="a.b.c"),
    # manual triggers
    "trigger-empty-object": post("/jobs", 422, "validation_error", {}),
    "trigger-without-repo": trigger(422, "validation_error", repo=None),
    "trigger-repo-not-owner-name": trigger(400, "invalid_input", repo="widgets"),
    "trigger-repo-with-space": trigger(400, "invalid_input", repo="acme/wid gets"),
    "trigger-repo-not-a-string": trigger(422, "validation_error", repo=42),
    "trigger-no-branch-no-commit": trigger(400, "invalid_input", branch=None),
    "trigger-empty-branch": trigger(422, "validation_error", branch=""),
    "trigger-without-clone-url": trigger(422, "validation_error", clone_url=None),
    "trigger-ftp-clone-url": trigger(400, "invalid_input", clone_url="ftp://h/acme/w.git"),
    "trigger-js-clone-url": trigger(400, "invalid_input", clone_url="javascript:alert(1)"),
    "trigger-clone-url-no-scheme": trigger(400, "invalid_input", clone_url="acme/widgets"),
    "trigger-short-commit": trigger(422, "validation_error", commit="abc1234"),
    "trigger-non-hex-commit": trigger(400, "invalid_input", commit="z" * 40),
    "trigger-upper-case-commit": trigger(400, "invalid_input", commit="ABCDEF0123" * 4),
    "trigger-41-hex-commit": trigger(400, "invalid_input", commit="a" * 41),
    "trigger-65-hex-commit": trigger(422, "validation_error", commit="a" * 65),
    "trigger-unknown-field": trigger(422, "validation_error", priority="high"),
    "cancel-empty-reason": post("/jobs/{pending}/cancel", 422, "validation_error", {"reason": ""}),
    "cancel-unknown-field": post("/jobs/{pending}/cancel", 422, "validation_error", {"x": 1}),
    # transitions the state machine does not have
    "cancel-cancelled": post("/jobs/{cancelled}/cancel", 409, "invalid_transition"),
    "retry-pending": post("/jobs/{pending}/retry", 409, "invalid_transition"),
    # tokens
    "list-no-token": get("/jobs", 401, "unauthenticated", headers=NO_TOKEN),
    "get-no-token": get("/jobs/{pending}", 401, "unauthenticated", headers=NO_TOKEN),
    "trigger-no-token": trigger(401, "unauthenticated", headers=NO_TOKEN),
    "cancel-no-token": post("/jobs/{pending}/cancel", 401, "unauthenticated", headers=NO_TOKEN),
    "retry-no-token": post("/jobs/{cancelled}/retry", 401, "unauthenticated", headers=NO_TOKEN),
    "list-unknown-token": get("/jobs", 401, "unauthenticated", headers=bearer("nope")),
    "trigger-unknown-token": trigger(401, "unauthenticated", headers=bearer("nope")),
    "list-basic-auth": get("/jobs", 401, "unauthenticated",
                           headers={"Authorization": "Basic cmVhZGVyOnB3"}),
    "list-empty-bearer": get("/jobs", 401, "unauthenticated", headers={"Authorization": "Bearer "}),
    "list-token-without-scheme": get("/jobs", 401, "unauthenticated",
                                     headers={"Authorization": READ_TOKEN}),
    "trigger-read-token": trigger(403, "forbidden", headers=READ),
    "cancel-read-token": post("/jobs/{pending}/cancel", 403, "forbidden", headers=READ),
    "retry-read-token": post("/jobs/{cancelled}/retry", 403, "forbidden", headers=READ),
    "list-agent-token": get("/jobs", 403, "forbidden", headers=AGENT),
    "trigger-agent-token": trigger(403, "forbidden", headers=AGENT),
    # bodies
    "trigger-not-json": post("/jobs", 400, "invalid_json", headers=WRITE | JSON,
                             content=b"{repo: acme/widgets}"),
    "trigger-truncated-json": post("/jobs", 400, "invalid_json", headers=WRITE | JSON,
                                   content=b'{"repo": "acme/wid'),
    "trigger-not-utf8": post("/jobs", 400, "invalid_json", headers=WRITE | JSON,
                             content=b'{"repo": "acme/\xff\xfe"}'),
    "trigger-nested-past-recursion": post("/jobs", 400, "invalid_json", headers=WRITE | JSON,
                                          content=b"[" * 100_000 + b"]" * 100_000),
    "trigger-5000-digit-integer": post("/jobs", 400, "invalid_json", headers=WRITE | JSON,
                                       content=b'{"repo": ' + b"7" * 5000 + b"}"),
    "trigger-repo-a-boolean": trigger(422, "validation_error", repo=True),
    "trigger-branch-a-number": trigger(422, "validation_error", branch=7),
    "cancel-reason-a-number": post("/jobs/{pending}/cancel", 422, "validation_error",
                                   {"reason": 5}),
    "cancel-not-json": post("/jobs/{pending}/cancel", 400, "invalid_json", headers=WRITE | JSON,
                            content=b"{"),
    # routing
    "unknown-route": other("GET", "/nothing-here", 404, "not_found", NO_TOKEN),
    "unknown-sub-route": other("GET", "/jobs/{pending}/artifacts", 404, "not_found", READ),
    "unknown-api-route": other("POST", "/api/nothing-here", 404, "not_found", WRITE),
    "delete-jobs": other("DELETE", "/jobs", 405, "method_not_allowed", WRITE),
    "put-job": other("PUT", "/jobs/{pending}", 405, "method_not_allowed", WRITE),
    "get-cancel": other("GET", "/jobs/{pending}/cancel", 405, "method_not_allowed", READ),
    "patch-api-jobs": other("PATCH", "/api/jobs", 405, "method_not_allowed", WRITE),
}  # fmt: skip


@pytest.mark.parametrize("bad", CASES.values(), ids=CASES.keys())
async def test_bad_request_gets_its_error_and_writes_nothing(
    client: httpx.AsyncClient, stored: Stored, nothing_written: NothingWritten, bad: Bad
) -> None:
    async with nothing_written():
        response = await bad.send(client, stored)
    assert_error(response, bad.status, bad.code)


@pytest.mark.parametrize("prefix_path", ["", "/api"])
async def test_cancel_of_a_cancelled_job_answers_409_with_the_current_job(
    client: httpx.AsyncClient, stored: Stored, nothing_written: NothingWritten, prefix_path: str
) -> None:
    current = (await client.get(f"/jobs/{stored.cancelled}", headers=READ)).json()
    async with nothing_written():
        response = await client.post(f"{prefix_path}/jobs/{stored.cancelled}/cancel", headers=WRITE)
    body = assert_error(response, 409, "invalid_transition")
    assert body["job"] == current
    assert body["job"]["status"] == "cancelled"


async def test_retry_of_a_pending_job_answers_409_with_the_current_job(
    client: httpx.AsyncClient, stored: Stored, nothing_written: NothingWritten
) -> None:
    current = (await client.get(f"/jobs/{stored.pending}", headers=READ)).json()
    async with nothing_written():
        response = await client.post(f"/jobs/{stored.pending}/retry", headers=WRITE)
    body = assert_error(response, 409, "invalid_transition")
    assert body["job"] == current


async def test_unauthenticated_answer_names_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs")
    assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_token_is_checked_before_the_body_is_validated(
    client: httpx.AsyncClient, nothing_written: NothingWritten
) -> None:
    async with nothing_written():
        response = await client.post("/jobs", json={"repo": 1})
    assert_error(response, 401, "unauthenticated")


async def test_validation_error_lists_each_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs", headers=READ, params={"limit": "0", "status": "x"})
    body = assert_error(response, 422, "validation_error")
    assert {tuple(problem["loc"]) for problem in body["problems"]} == {
        ("query", "limit"),
        ("query", "status"),
    }


NOT_OBJECTS = [b"[1, 2]", b'"acme/widgets"', b"42", b"true"]


@pytest.mark.parametrize(
    ("path", "content"),
    # JSON null is no body at all to a cancel, which takes an optional one
    [("/jobs", b"null")]
    + [(path, c) for path in ("/jobs", "/jobs/{pending}/cancel") for c in NOT_OBJECTS],
)
async def test_json_that_is_not_an_object_is_invalid_json_and_writes_nothing(
    client: httpx.AsyncClient,
    stored: Stored,
    nothing_written: NothingWritten,
    path: str,
    content: bytes,
) -> None:
    async with nothing_written():
        response = await client.post(
            path.format(pending=stored.pending), headers=WRITE | JSON, content=content
        )
    assert_error(response, 400, "invalid_json")


async def test_valid_json_sent_as_text_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, nothing_written: NothingWritten
) -> None:
    body = b'{"repo": "acme/widgets", "clone_url": "https://h/a/w.git", "branch": "main"}'
    async with nothing_written():
        response = await client.post(
            "/jobs", headers=WRITE | {"Content-Type": "text/plain"}, content=body
        )
    # 415 would be the exact answer; any 4xx in the error shape keeps the contract
    assert response.status_code in (400, 415, 422)
    assert_error(response, response.status_code, response.json()["error"])


async def oversized_stream(size: int) -> AsyncIterator[bytes]:
    """A body of ``size`` bytes sent in chunks, with no Content-Length."""
    chunk = b" " * 65536
    for _ in range(size // len(chunk) + 1):
        yield chunk


@pytest.mark.parametrize("path", ["/jobs", "/jobs/{pending}/cancel"])
async def test_body_over_the_limit_is_refused_by_its_declared_length(
    client: httpx.AsyncClient, stored: Stored, nothing_written: NothingWritten, path: str
) -> None:
    body = b'{"repo": "' + b"a" * 1_100_000 + b'"}'
    async with nothing_written():
        response = await client.post(
            path.format(pending=stored.pending), headers=WRITE | JSON, content=body
        )
    assert_error(response, 413, "payload_too_large")


async def test_body_over_the_limit_is_refused_while_it_streams(
    client: httpx.AsyncClient, nothing_written: NothingWritten
) -> None:
    async with nothing_written():
        response = await client.post(
            "/jobs", headers=WRITE | JSON, content=oversized_stream(1_100_000)
        )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


async def test_body_of_exactly_the_limit_is_read(client: httpx.AsyncClient) -> None:
    envelope = b'{"repo": "", "clone_url": "https://h/a/w.git", "branch": "main"}'
    body = envelope.replace(b'""', b'"' + b"a" * (1_048_576 - len(envelope)) + b'"')
    assert len(body) == 1_048_576
    response = await client.post("/jobs", headers=WRITE | JSON, content=body)
    # read whole, then refused for its content (a repo over 200 characters), not for its size
    body_error = assert_error(response, 422, "validation_error")
    assert body_error["problems"][0]["loc"] == ["body", "repo"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        pytest.param("PUT", "/jobs/{pending}", {"GET", "HEAD"}, id="job"),
        pytest.param("GET", "/jobs/{pending}/cancel", {"POST"}, id="cancel"),
        pytest.param("DELETE", "/jobs", {"GET", "POST"}, id="jobs"),
    ],
)
async def test_wrong_method_names_the_allowed_methods(
    client: httpx.AsyncClient, stored: Stored, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path.format(pending=stored.pending), headers=WRITE)
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == allowed


async def cursor_for(client: httpx.AsyncClient, **params: str) -> str:
    page = (await client.get("/jobs", headers=READ, params={"limit": "1", **params})).json()
    cursor: str = page["next_cursor"]
    assert cursor
    return cursor


@pytest.mark.parametrize(
    "other_filters",
    [
        {"repo": "acme/gadgets"},
        {"repo": "acme/widgets", "status": "pending"},
        {"repo": "acme/widgets", "branch": "main"},
        {"repo": "acme/widgets", "event": "manual"},
        {"repo": "acme/widgets", "since": "2020-01-01T00:00:00Z"},
        {},
    ],
    ids=["other-repo", "added-status", "added-branch", "added-event", "added-since", "dropped"],
)
async def test_cursor_reused_with_other_filters_is_refused(
    client: httpx.AsyncClient,
    stored: Stored,
    nothing_written: NothingWritten,
    other_filters: dict[str, str],
) -> None:
    cursor = await cursor_for(client, repo="acme/widgets")
    async with nothing_written():
        response = await client.get(
            "/jobs", headers=READ, params={"cursor": cursor, **other_filters}
        )
    assert_error(response, 400, "invalid_cursor")


async def test_cursor_is_refused_for_filters_that_only_look_alike(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(2):
        await client.post("/jobs", headers=WRITE, json=trigger_body(branch="a|b"))
    cursor = await cursor_for(client, repo="acme/widgets", branch="a|b")
    # a repo holding the separator is no owner/name: refused before the cursor is read
    response = await client.get(
        "/jobs", headers=READ, params={"cursor": cursor, "repo": "acme/widgets|a", "branch": "b"}
    )
    assert_error(response, 422, "validation_error")
    response = await client.get(
        "/jobs", headers=READ, params={"cursor": cursor, "repo": "acme/widgets", "branch": "a"}
    )
    assert_error(response, 400, "invalid_cursor")


async def test_cursor_is_valid_with_another_limit(
    client: httpx.AsyncClient, stored: Stored
) -> None:
    cursor = await cursor_for(client, repo="acme/widgets")
    response = await client.get(
        "/jobs", headers=READ, params={"cursor": cursor, "repo": "acme/widgets", "limit": "50"}
    )
    assert response.status_code == 200
    assert len(response.json()["jobs"]) == 1


def tampered(cursor: str) -> list[str]:
    body, mac = cursor.split(".")
    flip = {"A": "B"}.get(body[5], "A")
    return [
        body[:5] + flip + body[6:] + "." + mac,
        body + "." + mac[:-2],
        body + "." + ("A" if mac[0] != "A" else "B") + mac[1:],
        body,
        "." + mac,
    ]


async def test_forged_cursor_is_refused(
    client: httpx.AsyncClient, stored: Stored, nothing_written: NothingWritten
) -> None:
    cursor = await cursor_for(client)
    async with nothing_written():
        for forged in tampered(cursor):
            response = await client.get("/jobs", headers=READ, params={"cursor": forged})
            assert_error(response, 400, "invalid_cursor")


async def test_cursor_of_another_deployment_is_refused(
    client: httpx.AsyncClient,
    stored: Stored,
    settings_for: SettingsFactory,
    prefix: str,
    nothing_written: NothingWritten,
) -> None:
    other = settings_for(redis={"url": settings_for().redis.url, "key_prefix": f"{prefix}-other"})
    async with running_app(other) as elsewhere:
        for _ in range(2):
            await elsewhere.post("/jobs", headers=WRITE, json=trigger_body())
        foreign = await cursor_for(elsewhere)
    async with nothing_written():
        response = await client.get("/jobs", headers=READ, params={"cursor": foreign})
    assert_error(response, 400, "invalid_cursor")


@pytest.mark.parametrize(
    "clone_url",
    ["http://[::1/acme/w.git", "https://[not-an-ip]/acme/w.git", "https://h\uff03st/acme/w.git"],
    ids=["unclosed-bracket", "bad-bracketed-host", "nfkc-netloc"],
)
async def test_clone_url_that_urlsplit_refuses_is_invalid_input(
    client: httpx.AsyncClient, nothing_written: NothingWritten, clone_url: str
) -> None:
    async with nothing_written():
        response = await client.post("/jobs", headers=WRITE, json=trigger_body(clone_url=clone_url))
    assert_error(response, 400, "invalid_input")


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00", "0001-01-01"])
async def test_since_without_an_offset_at_year_1_lists_everything(
    client: httpx.AsyncClient, stored: Stored, since: str
) -> None:
    response = await client.get("/jobs", headers=READ, params={"since": since})
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 2


async def test_since_at_the_first_instant_of_year_1_with_an_offset_lists_everything(
    client: httpx.AsyncClient, stored: Stored
) -> None:
    response = await client.get("/jobs", headers=READ, params={"since": "0001-01-01T00:00:00Z"})
    assert response.status_code == 200
    assert response.json()["total"] == 2


async def test_anonymous_read_opens_the_read_routes(
    anonymous_client: httpx.AsyncClient,
) -> None:
    created = await anonymous_client.post("/jobs", headers=WRITE, json=trigger_body())
    job = created.json()
    listed = await anonymous_client.get("/jobs")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["jobs"]] == [job["id"]]
    read = await anonymous_client.get(f"/jobs/{job['id']}")
    assert read.status_code == 200
    assert read.json() == job
    assert (await anonymous_client.get(f"/api/jobs/{job['id']}")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/jobs", trigger_body()),
        ("POST", "/jobs/{job}/cancel", None),
        ("POST", "/jobs/{job}/retry", None),
        ("POST", "/api/jobs", trigger_body()),
    ],
)
async def test_anonymous_read_keeps_the_write_routes_closed(
    anonymous_client: httpx.AsyncClient,
    nothing_written: NothingWritten,
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    job = (await anonymous_client.post("/jobs", headers=WRITE, json=trigger_body())).json()
    async with nothing_written():
        response = await anonymous_client.request(method, path.format(job=job["id"]), json=body)
    assert_error(response, 401, "unauthenticated")


@pytest.mark.parametrize(
    "headers", [bearer("nope"), {"Authorization": "Basic eDp5"}], ids=["unknown", "basic"]
)
async def test_anonymous_read_still_refuses_a_bad_token(
    anonymous_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert_error(await anonymous_client.get("/jobs", headers=headers), 401, "unauthenticated")


async def test_anonymous_read_still_accepts_a_token(anonymous_client: httpx.AsyncClient) -> None:
    assert (await anonymous_client.get("/jobs", headers=READ)).status_code == 200
