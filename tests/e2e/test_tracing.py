"""Traces: a real server process exports spans over OTLP/HTTP to a receiver that decodes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.agent_harness import start_server, stop_server
from tests.support.otlp_receiver import ReceivedSpan, otlp_receiver
from tests.support.server_process import TRIGGER

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


def is_redis(span: ReceivedSpan) -> bool:
    """A span of a Redis call (either generation of the semantic conventions)."""
    return "redis" in (span.attributes.get("db.system"), span.attributes.get("db.system.name"))


def test_a_request_and_its_redis_calls_are_spans_carrying_the_request_id(tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        server = start_server(tmp_path / "traced", tracing={"otlp_endpoint": receiver.url})
        try:
            made = server.http.post("/jobs", json=TRIGGER, headers={"X-Request-ID": "traced-1"})
            job_id = made.json()["id"]
            read = server.http.get(f"/jobs/{job_id}", headers={"X-Request-ID": "traced-2"})
            assert server.http.get("/health").status_code == 200
        finally:
            stop_server(server)  # the server sends its last spans as it stops
        spans = receiver.spans

    assert (made.status_code, read.status_code) == (201, 200)
    by_request: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        by_request.setdefault(str(span.attributes.get("raibid.request_id")), []).append(span)
    names = {"traced-1": "POST /jobs", "traced-2": "GET /jobs/{job_id}"}  # templates, not ids
    for request_id, method in (("traced-1", "POST"), ("traced-2", "GET")):
        servers = [s for s in by_request.get(request_id, []) if s.is_server]
        assert len(servers) == 1, spans
        attributes = servers[0].attributes
        assert attributes.get("http.request.method", attributes.get("http.method")) == method
        assert (servers[0].name, servers[0].service) == (names[request_id], "raibid-api")
        assert any(is_redis(s) for s in by_request[request_id]), by_request[request_id]
    assert made.json()["request_id"] == "traced-1"
    # the probes are left out
    paths = {s.attributes.get("url.path", s.attributes.get("http.target")) for s in spans}
    assert "/health" not in paths
    assert f"/jobs/{job_id}" in paths
