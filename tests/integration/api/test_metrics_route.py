"""`GET /metrics`: who may scrape it, the setting that turns it off, route templates as labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from raibid_api.observability.metrics import REGISTRY
from tests.support.aliases import SettingsFactory
from tests.support.api import READ, WRITE, running_app


def sample(text: str, name: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and not found.labels:
                return found.value
    return None


async def test_a_scrape_needs_the_read_scope(client: httpx.AsyncClient) -> None:
    refused = await client.get("/metrics")
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthenticated"
    answered = await client.get("/metrics", headers=READ)
    assert answered.status_code == 200
    assert sample(answered.text, "raibid_queue_depth") == 0


async def test_metrics_anonymous_opens_the_scrape_and_nothing_else(
    settings_for: SettingsFactory,
) -> None:
    async with running_app(settings_for(metrics={"anonymous": True})) as api:
        assert (await api.get("/metrics")).status_code == 200
        assert (await api.get("/jobs")).status_code == 401


async def test_metrics_off_answers_404_and_times_no_request(settings_for: SettingsFactory) -> None:
    labels = {"route": "/jobs", "method": "GET", "status": "200"}
    before = REGISTRY.get_sample_value("raibid_http_requests_total", labels) or 0.0
    async with running_app(settings_for(metrics={"enabled": False})) as api:
        assert (await api.get("/jobs", headers=READ)).status_code == 200
        off = await api.get("/metrics", headers=READ)
    assert off.status_code == 404
    assert off.json()["error"] == "not_found"
    assert (REGISTRY.get_sample_value("raibid_http_requests_total", labels) or 0.0) == before


async def test_requests_are_counted_by_route_template(client: httpx.AsyncClient) -> None:
    labels = {"route": "/jobs/{job_id}/cancel", "method": "POST", "status": "404"}
    before = REGISTRY.get_sample_value("raibid_http_requests_total", labels) or 0.0
    missing = "0b0b0b0b-0000-4000-8000-000000000000"
    assert (await client.post(f"/jobs/{missing}/cancel", headers=WRITE)).status_code == 404
    assert REGISTRY.get_sample_value("raibid_http_requests_total", labels) == before + 1
    alias = {"route": "/api/jobs/{job_id}/cancel", "method": "POST", "status": "404"}
    assert REGISTRY.get_sample_value("raibid_http_requests_total", alias) is None
