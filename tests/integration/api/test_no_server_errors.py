"""Hypothesis fuzzing of the jobs API: no query string and no body a client sends gets a 5xx."""

from __future__ import annotations

import json
import string
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raibid_api.domain.jobs import JobEvent, JobStatus
from tests.support.api import (
    JOB_FIELDS,
    JSON,
    READ,
    WRITE,
    assert_client_error,
    trigger_body,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

offsets = st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23))
aware_times = st.datetimes(timezones=st.builds(timezone, offsets)).map(datetime.isoformat)
cursor_like = st.tuples(st.binary(max_size=60), st.binary(max_size=20)).map(
    lambda parts: ".".join(quote(part.hex()) for part in parts)
)
query_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [*JobStatus, *JobEvent, "0", "1", "200", "201", "-1", "1e3", "acme/widgets", "main", ""]
    ),
    st.integers().map(str),
    aware_times,
    st.datetimes().map(datetime.isoformat),
    cursor_like,
)
query_names = st.sampled_from(["status", "repo", "branch", "event", "since", "limit", "cursor"])
queries = st.lists(st.tuples(query_names | st.text(max_size=8), query_values), max_size=6)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
hex_ish = st.text(alphabet="0123456789abcdefABCDEFg", min_size=38, max_size=66)
url_ish = st.builds(
    str.__add__,
    st.sampled_from(["https://", "http://", "ssh://", "git://", "file://", "ftp://", "git@h:", ""]),
    # the pieces that give a URL its structure, and anything between them
    st.lists(
        st.sampled_from(["[", "]", "::1", "@", ":", "/", "?", "#", "%", "host", "\uff03"])
        | st.text(max_size=4),
        max_size=8,
    ).map("".join),
)
field_values = json_values | st.text(max_size=60)
# any subset of the trigger's fields, each likely malformed in a way its check looks for
trigger_fields = st.fixed_dictionaries(
    {},
    optional={
        "repo": field_values | st.sampled_from(["acme/widgets", "a/b", "a/", "/b", "a/b/c"]),
        "clone_url": url_ish | field_values,
        "branch": field_values,
        "commit": hex_ish | field_values,
        "reason": field_values,
    },
)
bodies = trigger_fields | json_values


def check(response: httpx.Response) -> None:
    assert_client_error(response)
    if response.status_code == 201:
        assert set(response.json()) == JOB_FIELDS


@pytest.fixture
async def job_id(client: httpx.AsyncClient) -> str:
    response = await client.post("/jobs", headers=WRITE, json=trigger_body())
    assert response.status_code == 201
    return str(response.json()["id"])


@FUZZ
@given(params=queries)
async def test_any_listing_query_gets_no_server_error(
    client: httpx.AsyncClient, job_id: str, params: list[tuple[str, str]]
) -> None:
    query: list[tuple[str, str | int | float | bool | None]] = list(params)
    check(await client.get("/jobs", headers=READ, params=query))


@FUZZ
@given(raw=st.text(alphabet=string.printable.strip() + " ", max_size=80))
async def test_any_raw_query_string_gets_no_server_error(
    client: httpx.AsyncClient, job_id: str, raw: str
) -> None:
    url = httpx.URL("/jobs", query=quote(raw, safe="=&%+").encode())
    check(await client.get(url, headers=READ))


@FUZZ
@given(text=st.text(min_size=1, max_size=60), route=st.sampled_from(["", "/cancel", "/retry"]))
async def test_any_job_id_gets_no_server_error(
    client: httpx.AsyncClient, text: str, route: str
) -> None:
    method = "GET" if route == "" else "POST"
    response = await client.request(method, f"/jobs/{quote(text, safe='')}{route}", headers=WRITE)
    check(response)


@FUZZ
@given(body=bodies, route=st.sampled_from(["/jobs", "/jobs/{id}/cancel", "/jobs/{id}/retry"]))
async def test_any_json_body_gets_no_server_error(
    client: httpx.AsyncClient, job_id: str, body: Any, route: str
) -> None:
    content = json.dumps(body).encode()
    response = await client.post(route.format(id=job_id), headers=WRITE | JSON, content=content)
    check(response)


@FUZZ
@given(
    name=st.sampled_from(["repo", "clone_url", "branch", "commit"]),
    value=st.text(max_size=80) | url_ish | hex_ish,
)
async def test_any_string_in_one_field_of_a_valid_trigger_gets_no_server_error(
    client: httpx.AsyncClient, name: str, value: str
) -> None:
    # every other field valid, so the value reaches the checks behind the schema
    body = trigger_body() | {name: value}
    check(await client.post("/jobs", headers=WRITE, json=body))


@FUZZ
@given(content=st.binary(max_size=200), content_type=st.sampled_from(["application/json", None]))
async def test_any_bytes_as_a_body_get_no_server_error(
    client: httpx.AsyncClient, content: bytes, content_type: str | None
) -> None:
    headers = WRITE | ({"Content-Type": content_type} if content_type else {})
    check(await client.post("/jobs", headers=headers, content=content))
