"""Every bad delivery of the issue: a clear 4xx, and no job, index, queue entry or dedup key.

A refused delivery still leaves bookkeeping behind, on purpose: its journal entry (the journal
records every delivery, accepted or not) and its count in the source's rate-limit window. The
checks below compare every other key under the test's prefix before and after, and then look at
the journal entry itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from redis.asyncio import Redis

from tests.support.api import READ, assert_error
from tests.support.webhook_deliveries import headers_for, job_state, push_body, sha
from tests.support.webhook_samples import OTHER_SECRET, SECRET, hex_hmac

BODY = push_body(sha(1))
Case = Callable[[], tuple[dict[str, str], bytes]]


def signed(body: bytes) -> tuple[dict[str, str], bytes]:
    return headers_for(body), body


def with_signature(value: str | None, *, hub: str | None = None) -> tuple[dict[str, str], bytes]:
    headers = headers_for(BODY)
    del headers["x-hub-signature-256"]
    if value is None:
        del headers["x-gitea-signature"]
    else:
        headers["x-gitea-signature"] = value
    if hub is not None:
        headers["x-hub-signature-256"] = hub
    return headers, BODY


def push_without(field: str) -> tuple[dict[str, str], bytes]:
    payload = json.loads(BODY)
    del payload[field]
    return signed(json.dumps(payload).encode())


def push_with(field: str, value: object) -> tuple[dict[str, str], bytes]:
    payload = json.loads(BODY)
    payload[field] = value
    return signed(json.dumps(payload).encode())


GOOD = hex_hmac(SECRET, BODY)
CASES: dict[str, tuple[Case, int, str]] = {
    "missing signature": (lambda: with_signature(None), 401, "signature_missing"),
    "empty signature": (lambda: with_signature(""), 401, "signature_missing"),
    "empty hub signature": (lambda: with_signature(None, hub="sha256="), 401, "signature_missing"),
    "wrong secret": (
        lambda: with_signature(hex_hmac(OTHER_SECRET, BODY)),
        401,
        "signature_mismatch",
    ),
    "truncated signature": (lambda: with_signature(GOOD[:-2]), 401, "signature_mismatch"),
    "upper-cased signature": (lambda: with_signature(GOOD.upper()), 401, "signature_mismatch"),
    "non-hex signature": (lambda: with_signature("z" * 64), 401, "signature_mismatch"),
    "hub signature without prefix": (
        lambda: with_signature(None, hub=GOOD),
        401,
        "signature_mismatch",
    ),
    "signature of another body": (
        lambda: (headers_for(push_body(sha(2))), BODY),
        401,
        "signature_mismatch",
    ),
    "body not JSON": (lambda: signed(b"{not json"), 400, "invalid_webhook"),
    "JSON not an object": (lambda: signed(b"[1, 2, 3]"), 400, "invalid_webhook"),
    "push without ref": (lambda: push_without("ref"), 400, "invalid_webhook"),
    "push without after": (lambda: push_without("after"), 400, "invalid_webhook"),
    "push without repository": (lambda: push_without("repository"), 400, "invalid_webhook"),
    "ref of the wrong type": (lambda: push_with("ref", 42), 400, "invalid_webhook"),
    "repository of the wrong type": (
        lambda: push_with("repository", "acme/widgets"),
        400,
        "invalid_webhook",
    ),
    "after not a sha": (lambda: push_with("after", "main"), 400, "invalid_webhook"),
    "no event type": (
        lambda: (
            {k: v for k, v in headers_for(BODY).items() if "event" not in k},
            BODY,
        ),
        400,
        "invalid_webhook",
    ),
    "malformed delivery id": (
        lambda: (headers_for(BODY, delivery_id="../../etc/passwd"), BODY),
        400,
        "invalid_webhook",
    ),
    "text/plain body": (
        lambda: (headers_for(BODY) | {"content-type": "text/plain"}, BODY),
        415,
        "unsupported_media_type",
    ),
    "no content type": (
        lambda: ({k: v for k, v in headers_for(BODY).items() if k != "content-type"}, BODY),
        415,
        "unsupported_media_type",
    ),
    "2 MB body": (
        lambda: signed(b'{"ref": "' + b"x" * 2_000_000 + b'"}'),
        413,
        "payload_too_large",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_delivery_is_refused_with_a_clear_4xx_and_writes_no_job(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str, name: str
) -> None:
    make, status, code = CASES[name]
    headers, body = make()
    before = await job_state(raw_redis, prefix)

    answer = await client.post("/webhook/gitea", content=body, headers=headers)

    assert_error(answer, status, code)
    assert await job_state(raw_redis, prefix) == before
    journal = (await client.get("/webhook/deliveries", headers=READ)).json()["deliveries"]
    assert [(e["decision"], e["reason"], e["job_id"]) for e in journal] == [
        ("rejected", code, None)
    ]


async def test_unknown_event_type_is_ignored_not_an_error(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str
) -> None:
    headers = headers_for(BODY, event="wiki")
    before = await job_state(raw_redis, prefix)

    answer = await client.post("/webhook/gitea", content=BODY, headers=headers)

    assert answer.status_code == 200
    assert answer.json()["ignored"] == "unsupported_event"
    assert await job_state(raw_redis, prefix) == before


@pytest.mark.parametrize("path", ["/webhook/gitlab", "/webhooks/bitbucket", "/webhook/GITEA"])
async def test_unknown_forge_path_is_a_404_and_writes_nothing(
    client: httpx.AsyncClient, raw_redis: Redis, prefix: str, path: str
) -> None:
    headers, body = signed(BODY)
    before = await job_state(raw_redis, prefix)

    answer = await client.post(path, content=body, headers=headers)

    assert_error(answer, 404, "not_found")
    assert await job_state(raw_redis, prefix) == before
