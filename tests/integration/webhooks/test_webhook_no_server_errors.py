"""Hypothesis over HTTP: nothing a client sends to a webhook route gets a 5xx.

Signed deliveries get past the signature check, so their payloads reach the parsers, the job
store and the journal; the recorded fixtures, mutated one field at a time, reach further still.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raibid_api.webhooks.journal import Decision
from tests.support.api import READ, WRITE, assert_client_error
from tests.support.webhook_deliveries import headers_for
from tests.support.webhook_samples import FIXTURE_FILES, fixture_payload

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FORGES = st.sampled_from(["gitea", "forgejo", "github", "gitlab", "", "GITEA"])
EVENTS = st.sampled_from(["push", "pull_request", "pull_request_sync", "ping", "create", "x"])
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", ""]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=15,
)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    """A recorded payload with one top-level or nested field replaced or dropped."""
    payload: dict[str, Any] = fixture_payload(draw(st.sampled_from(FIXTURE_FILES)))
    target = payload
    for _ in range(draw(st.integers(0, 2))):
        objects = [k for k, v in target.items() if isinstance(v, dict)]
        if not objects:
            break
        target = target[draw(st.sampled_from(sorted(objects)))]
    key = draw(st.sampled_from(sorted(target) or ["x"]))
    if draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = draw(json_values)
    return json.dumps(payload).encode()


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated_fixture(),
)


@FUZZ
@given(forge=FORGES, event=EVENTS, body=bodies, content_type=CONTENT_TYPES, sign=st.booleans())
async def test_any_delivery_gets_an_answer_below_500(
    client: httpx.AsyncClient,
    forge: str,
    event: str,
    body: bytes,
    content_type: str,
    sign: bool,
) -> None:
    headers = headers_for(body, forge="github" if forge == "github" else "gitea", event=event)
    if not sign:
        headers = {k: v for k, v in headers.items() if "signature" not in k}
    headers["content-type"] = content_type

    answer = await client.post(f"/webhook/{forge}", content=body, headers=headers)

    assert_client_error(answer)


@FUZZ
@given(
    forge=FORGES,
    headers=st.dictionaries(header_text, header_text, max_size=5),
    payload=json_values | st.text(max_size=200),
    raw=st.booleans(),
)
async def test_any_explain_request_gets_an_answer_below_500(
    client: httpx.AsyncClient, forge: str, headers: dict[str, str], payload: Any, raw: bool
) -> None:
    request: Any = {"headers": headers, "payload": payload}
    if raw:
        request = payload

    answer = await client.post(f"/webhook/{forge}/explain", json=request, headers=WRITE)

    assert_client_error(answer)


@FUZZ
@given(
    params=st.lists(
        st.tuples(
            st.sampled_from(["forge", "decision", "repo", "cursor", "limit"]) | header_text,
            st.sampled_from([*Decision, "gitea", "0", "201", "1-1", "0-0", "acme/w"])
            | header_text
            | st.integers().map(str),
        ),
        max_size=5,
    )
)
async def test_any_journal_query_gets_an_answer_below_500(
    client: httpx.AsyncClient, params: list[tuple[str, str | int | float | bool | None]]
) -> None:
    answer = await client.get("/webhook/deliveries", params=params, headers=READ)

    assert_client_error(answer)
