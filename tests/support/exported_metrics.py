"""The names of every metric the server exports, from the metrics module itself.

A labelled counter exports no sample before its first child, so the names come from the metric
families and their types (a counter's ``_total``, a histogram's ``_bucket``, ``_sum``, ``_count``),
with the Redis-derived gauges rendered from a snapshot that has every value.
"""

from __future__ import annotations

import asyncio
import re

from prometheus_client.core import Metric

from raibid_api.observability import metrics

METRIC_NAME = re.compile(r"\braibid_[a-z0-9_]+")
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
    "summary": ("_sum", "_count"),
}


def _full_snapshot() -> metrics.Snapshot:
    return metrics.Snapshot(
        jobs_by_status=dict.fromkeys(metrics.JOB_STATUSES, 1),
        queue_depth=1, claimed=1, oldest_pending_created_ms=1, agents=1, status_backlog=1,
        spool_depth=1, ready={"redis": True}, read_at_ms=2, ok=True,
    )  # fmt: skip


def families() -> list[Metric]:
    """Every metric family: the process-wide registry's and the scrape-time gauges'."""

    async def snapshot() -> metrics.Snapshot:
        return _full_snapshot()

    state = metrics.ScrapeState(snapshot, max_age_s=60)
    asyncio.run(state.refresh())
    return [*metrics.REGISTRY.collect(), *state.registry.collect()]


def sample_names() -> set[str]:
    """Every series name a query may use."""
    return {
        family.name + suffix
        for family in families()
        for suffix in _SUFFIXES.get(family.type, ("",))
    }


def names_in(text: str) -> set[str]:
    """The raibid metric names a query or rule mentions."""
    return set(METRIC_NAME.findall(text))
