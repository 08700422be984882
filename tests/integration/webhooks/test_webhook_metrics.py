"""Webhook metrics: deliveries by decision, the intake stage, the spool while Redis is away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from raibid_api.embedded import EmbeddedRedis
from raibid_api.observability.metrics import REGISTRY
from tests.support.aliases import SettingsFactory
from tests.support.api import READ
from tests.support.polling import eventually
from tests.support.webhook_app import serving, spooled
from tests.support.webhook_deliveries import deliver, headers_for, new_id, push_body, sha


def growth(name: str, **labels: str) -> Callable[[], float]:
    """How much ``name`` with ``labels`` grew since this call."""
    before = REGISTRY.get_sample_value(name, labels) or 0.0
    return lambda: (REGISTRY.get_sample_value(name, labels) or 0.0) - before


def deliveries(decision: str) -> Callable[[], float]:
    return growth("raibid_webhook_deliveries_total", forge="gitea", event="push",
                  decision=decision)  # fmt: skip


async def scraped(client: httpx.AsyncClient) -> dict[str, float]:
    answer = await client.get("/metrics", headers=READ)
    assert answer.status_code == 200
    return {
        sample.name + "".join(sample.labels.values()): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


async def test_deliveries_are_counted_by_decision(client: httpx.AsyncClient) -> None:
    created, duplicate, rejected = (
        deliveries("created"),
        deliveries("duplicate"),
        deliveries("rejected"),
    )
    stage = growth("raibid_job_stage_seconds_count", stage="webhook_to_queued")
    body, delivery = push_body(sha(1)), new_id()

    assert (await deliver(client, body, delivery_id=delivery)).status_code == 202
    assert (await deliver(client, body, delivery_id=delivery)).status_code == 200
    unsigned = headers_for(body, secret="not-the-secret")
    assert (await client.post("/webhook/gitea", content=body, headers=unsigned)).status_code == 401

    assert (created(), duplicate(), rejected()) == (1, 1, 1)
    assert stage() == 1


async def test_a_spooled_delivery_is_counted_then_replayed(
    own_redis: EmbeddedRedis, settings_for: SettingsFactory, spool_dir: Path
) -> None:
    spooled_now = deliveries("spooled")
    replayed = growth("raibid_webhook_spool_replays_total", outcome="replayed")
    settings = settings_for(redis_url=own_redis.url)
    async with serving(settings) as client:
        await asyncio.to_thread(own_redis.stop)
        answer = await deliver(client, push_body(sha(2), branch="main"))
        away = await scraped(client)
        port = own_redis.port
        await asyncio.to_thread(own_redis.start)
        assert own_redis.port == port
        await eventually(lambda: asyncio.to_thread(lambda: not spooled(spool_dir)), 15, "replay")
        back: dict[str, float] = {}

        async def recovered() -> bool:
            # the failed read is reused for metrics.cache (2 s), then Redis is read again
            back.update(await scraped(client))
            return back["raibid_metrics_redis_read_ok"] == 1

        await eventually(recovered, 10, "a scrape that reads Redis again")

    assert answer.json()["spooled"] is True
    assert spooled_now() == 1
    assert replayed() == 1
    assert away["raibid_webhook_spool_depth"] == 1
    assert away["raibid_metrics_redis_read_ok"] == 0
    assert away["raibid_dependency_readyredis"] == 0
    assert "raibid_queue_depth" not in away
    assert back["raibid_webhook_spool_depth"] == 0
    assert back["raibid_dependency_readyredis"] == 1
    assert back["raibid_queue_depth"] == 1
