"""The metrics module on its own: bounded labels, the middleware, the scrape-time cache."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from raibid_api.observability import metrics
from raibid_api.observability.metrics import REGISTRY, HttpMetricsMiddleware, ScrapeState, Snapshot


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@dataclass
class Route:
    path: str


def asgi_app(route: Route | None, status: int, fail: bool = False) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if route is not None:
            scope["route"] = route  # as the router leaves it
        if fail:
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def call(app: Any, method: str = "GET") -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": method, "path": "/x/123", "headers": []}
    await HttpMetricsMiddleware(app)(scope, receive, send)


async def test_a_request_is_counted_under_its_route_template() -> None:
    labels = {"route": "/things/{id}", "method": "GET", "status": "200"}
    before = value("raibid_http_requests_total", **labels)
    await call(asgi_app(Route("/things/{id}"), 200))
    assert value("raibid_http_requests_total", **labels) == before + 1
    timed = value("raibid_http_request_duration_seconds_count", route="/things/{id}", method="GET")
    assert timed >= 1


async def test_an_unmatched_path_and_an_odd_method_have_bounded_labels() -> None:
    labels = {"route": "unmatched", "method": "other", "status": "404"}
    before = value("raibid_http_requests_total", **labels)
    await call(asgi_app(None, 404), method="BREW")
    assert value("raibid_http_requests_total", **labels) == before + 1
    text = metrics.render().decode()
    assert "/x/123" not in text
    assert "BREW" not in text


async def test_a_request_that_raises_counts_as_a_500() -> None:
    labels = {"route": "/boom", "method": "POST", "status": "500"}
    before = value("raibid_http_requests_total", **labels)
    with pytest.raises(RuntimeError):
        await call(asgi_app(Route("/boom"), 200, fail=True), method="POST")
    assert value("raibid_http_requests_total", **labels) == before + 1


def test_unknown_events_and_reasons_become_other() -> None:
    before = value("raibid_webhook_deliveries_total", forge="gitea", event="other",
                   decision="ignored")  # fmt: skip
    metrics.webhook_delivery("gitea", "x" * 200, "ignored")
    after = value("raibid_webhook_deliveries_total", forge="gitea", event="other",
                  decision="ignored")  # fmt: skip
    assert after == before + 1
    finished = value("raibid_jobs_finished_total", status="failed", reason="other")
    metrics.job_finished("failed", "something the agent made up", 1.0)
    assert value("raibid_jobs_finished_total", status="failed", reason="other") == finished + 1


class CountingSource:
    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> Snapshot:
        self.calls += 1
        await self.release.wait()
        return Snapshot(jobs_by_status={"pending": self.calls}, read_at_ms=1)


async def test_concurrent_scrapes_share_one_read_and_a_fresh_one_is_reused() -> None:
    source = CountingSource()
    state = ScrapeState(source, max_age_s=60)
    scrapes = [asyncio.ensure_future(state.refresh()) for _ in range(5)]
    await asyncio.sleep(0)  # every scrape waits on the one read
    source.release.set()
    results = await asyncio.gather(*scrapes)
    assert source.calls == 1
    assert all(result is results[0] for result in results)
    assert await state.refresh() is results[0]
    assert source.calls == 1


async def test_a_stale_snapshot_is_read_again() -> None:
    source = CountingSource()
    source.release.set()
    state = ScrapeState(source, max_age_s=0)
    await state.refresh()
    await state.refresh()
    assert source.calls == 2


async def test_without_redis_the_redis_gauges_are_left_out() -> None:
    async def away() -> Snapshot:
        return Snapshot(ready={"redis": False}, spool_depth=3, read_at_ms=1, ok=False)

    state = ScrapeState(away, max_age_s=60)
    await state.refresh()
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.render(state.registry).decode())
        for sample in family.samples
    }
    assert samples["raibid_metrics_redis_read_ok"] == 0
    assert samples["raibid_dependency_ready"] == 0
    assert samples["raibid_webhook_spool_depth"] == 3
    assert "raibid_queue_depth" not in samples
    assert "raibid_jobs" not in samples


def test_a_loop_histogram_renders_cumulative_buckets_with_le_bounds() -> None:
    call = metrics.RedisCall("Test.bounds")
    for seconds in (0.0005, 0.0006, 0.3, 7.0):  # on a bound, between two, high, above them all
        call.observe(seconds)
    samples = {
        (sample.name, sample.labels.get("le")): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.labels.get("operation") == "Test.bounds"
    }
    assert samples[("raibid_redis_call_duration_seconds_bucket", "0.0005")] == 1
    assert samples[("raibid_redis_call_duration_seconds_bucket", "0.001")] == 2
    assert samples[("raibid_redis_call_duration_seconds_bucket", "0.1")] == 2
    assert samples[("raibid_redis_call_duration_seconds_bucket", "0.5")] == 3
    assert samples[("raibid_redis_call_duration_seconds_bucket", "+Inf")] == 4
    assert samples[("raibid_redis_call_duration_seconds_count", None)] == 4
    assert samples[("raibid_redis_call_duration_seconds_sum", None)] == 0.0005 + 0.0006 + 0.3 + 7.0
