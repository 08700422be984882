"""The job metrics follow a job through the protocol: created, waited, claimed, logged, ended.

The app's clock is the test's, so every duration is known to the millisecond. The counters are
process-wide: each test reads them before and after.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from raibid_api.observability.metrics import REGISTRY
from tests.support.agent_protocol import READ, ProtocolApp


def reading(name: str, **labels: str) -> Callable[[], float]:
    """How much ``name`` with ``labels`` grew since this call."""
    before = REGISTRY.get_sample_value(name, labels) or 0.0
    return lambda: (REGISTRY.get_sample_value(name, labels) or 0.0) - before


async def test_a_job_s_stages_are_observed_with_the_clock_s_durations(api: ProtocolApp) -> None:
    created = reading("raibid_jobs_created_total", event="manual")
    waited = reading("raibid_job_queue_wait_seconds_sum")
    first_log = reading("raibid_job_stage_seconds_sum", stage="claimed_to_first_log")
    to_finish = reading("raibid_job_stage_seconds_sum", stage="first_log_to_finished")
    ran = reading("raibid_job_duration_seconds_sum", status="success")
    finished = reading("raibid_jobs_finished_total", status="success", reason="none")
    lines = reading("raibid_log_lines_ingested_total")
    size = reading("raibid_log_ingested_bytes_total")

    await api.trigger()
    api.clock.advance(3)
    held = await api.claim()
    api.clock.advance(2)
    await api.send_logs(held, ["héllo", "world"], offset=0)
    api.clock.advance(1)
    await api.send_logs(held, ["again"], offset=2)  # not the first lines: no second observation
    api.clock.advance(4)
    assert (await api.complete(held)).status_code == 200

    assert created() == 1
    assert waited() == 3.0
    assert first_log() == 2.0
    assert to_finish() == 5.0
    assert ran() == 7.0
    assert finished() == 1
    assert lines() == 3
    assert size() == len("héllo".encode()) + len("world") + len("again")


async def test_a_requeue_counts_for_the_reaper_and_not_as_a_new_job(api: ProtocolApp) -> None:
    created = reading("raibid_jobs_created_total", event="manual")
    requeued = reading("raibid_reaper_requeues_total")
    claimed = reading("raibid_job_queue_wait_seconds_count")
    held = await api.trigger_and_claim()
    await api.send_logs(held, ["attempt one"], offset=0)
    api.expire_lease()

    assert await api.reaper.reap_once() == 1
    again = await api.claim("agent-2")
    first_log = reading("raibid_job_stage_seconds_count", stage="claimed_to_first_log")
    await api.send_logs(again, ["attempt two"], offset=0)

    assert (created(), requeued(), claimed()) == (1, 1, 2)
    assert first_log() == 1  # the new attempt's first line is a first line again


async def test_metrics_show_the_queue_as_redis_holds_it(api: ProtocolApp) -> None:
    await api.trigger(branch="one")
    await api.trigger(branch="two")
    api.clock.advance(90)
    await api.claim()

    answer = await api.http.get("/metrics", headers=READ)

    assert answer.status_code == 200
    values = {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }
    assert values[("raibid_queue_depth", ())] == 1
    assert values[("raibid_queue_claimed", ())] == 1
    assert values[("raibid_jobs", ("pending",))] == 1
    assert values[("raibid_jobs", ("running",))] == 1
    assert values[("raibid_queue_oldest_pending_age_seconds", ())] == 90.0
    assert values[("raibid_metrics_redis_read_ok", ())] == 1
