"""Every branch of the outbox scripts (outbox_*.lua) and reads, against a real Redis."""

from __future__ import annotations

from dataclasses import replace

import orjson

from raibid_api.storage.keys import Keys
from raibid_api.storage.outbox import STATUS_GROUP, SendPermit, StatusOutbox, StatusReport
from tests.support.aliases import RawRedis
from tests.support.forges import Replica

T0 = 1_790_000_000_000
SHA = "b" * 40


def report(job_id: str = "job-1", rank: int = 3, *, final: bool = False, state: str = "pending",
           attempt: int = 1) -> StatusReport:  # fmt: skip
    return StatusReport(job_id, "gitea", "acme/widgets", SHA, state, "Queued",
                        f"https://ci.example.org/jobs/{job_id}/logs", "raibid-ci", rank, final,
                        attempt=attempt)  # fmt: skip


async def enqueued(outbox: StatusOutbox, *reports: StatusReport) -> list[bool]:
    return [await outbox.enqueue(r, look_again_ms=T0 + 3_600_000) for r in reports]


async def test_report_round_trips_through_the_stream(outbox: StatusOutbox) -> None:
    sent = report(final=True, state="success", rank=5, attempt=2)
    await enqueued(outbox, sent)
    [entry] = await outbox.read_new(10)
    assert entry.report == sent


async def test_report_not_newer_than_the_queued_one_is_not_queued(
    outbox: StatusOutbox, redis: RawRedis, keys: Keys
) -> None:
    assert await enqueued(outbox, report(rank=4), report(rank=3), report(rank=4),
                          report(rank=5)) == [True, False, False, True]  # fmt: skip
    assert await redis.xlen(keys.outbox_status) == 2
    assert await redis.hget(keys.status_record("job-1"), "newest") == "5"
    assert 0 < await redis.ttl(keys.status_record("job-1")) <= 3600


async def test_final_state_is_marked_and_awaited_until_the_forge_takes_it(
    outbox: StatusOutbox, redis: RawRedis, keys: Keys
) -> None:
    await enqueued(outbox, report(rank=5, final=True, state="success"))
    assert await redis.zscore(keys.outbox_status_unreported, "job-1") == T0 + 3_600_000
    assert await redis.hget(keys.status_record("job-1"), "final") == "5"
    [entry] = await outbox.read_new(10)
    assert await outbox.begin_send(entry, T0, 30_000) is SendPermit.GO
    assert await outbox.settle(entry, "sent")
    assert await redis.zcard(keys.outbox_status_unreported) == 0
    assert await redis.hget(keys.status_record("job-1"), "reported") == "5"
    assert await redis.xlen(keys.outbox_status) == 0
    assert (await redis.xpending(keys.outbox_status, STATUS_GROUP))["pending"] == 0


async def test_consumers_of_the_group_share_the_reports(
    replica: Replica, outbox: StatusOutbox
) -> None:
    await enqueued(outbox, *(report(f"job-{i}") for i in range(10)))
    other = replica("replica-b")
    mine, theirs = await outbox.read_new(5), await other.read_new(5)
    assert len(mine) == len(theirs) == 5
    assert {e.report.job_id for e in mine}.isdisjoint({e.report.job_id for e in theirs})
    assert await outbox.read_new(5) == []


async def test_older_report_is_stale_once_a_newer_one_is_queued(outbox: StatusOutbox) -> None:
    await enqueued(outbox, report(rank=3))
    [old] = await outbox.read_new(10)
    await enqueued(outbox, report(rank=4))
    assert await outbox.begin_send(old, T0, 30_000) is SendPermit.STALE
    assert await outbox.settle(old, "dropped")


async def test_report_is_stale_once_an_equal_rank_was_reported(outbox: StatusOutbox) -> None:
    final = report(rank=5, final=True, state="success")
    await enqueued(outbox, final)
    assert await outbox.enqueue(final, look_again_ms=T0, mode="resend")
    first, again = await outbox.read_new(10)
    await outbox.begin_send(first, T0, 30_000)
    await outbox.settle(first, "sent")
    assert await outbox.begin_send(again, T0, 30_000) is SendPermit.STALE


async def test_second_sender_of_a_job_waits_for_the_lease(
    replica: Replica, outbox: StatusOutbox
) -> None:
    other = replica("replica-b")
    await enqueued(outbox, report(rank=3))
    [pending] = await outbox.read_new(10)
    assert await outbox.begin_send(pending, T0, 30_000) is SendPermit.GO
    await enqueued(outbox, report(rank=5, final=True, state="success"))
    [final] = await other.read_new(10)
    assert await other.begin_send(final, T0 + 29_999, 30_000) is SendPermit.BUSY
    assert await other.begin_send(final, T0 + 30_001, 30_000) is SendPermit.GO


async def test_settling_releases_the_lease_at_once(replica: Replica, outbox: StatusOutbox) -> None:
    other = replica("replica-b")
    await enqueued(outbox, report(rank=3))
    [pending] = await outbox.read_new(10)
    await outbox.begin_send(pending, T0, 30_000)
    await enqueued(outbox, report(rank=4))
    [running] = await other.read_new(10)
    await outbox.settle(pending, "sent")
    assert await other.begin_send(running, T0, 30_000) is SendPermit.GO


async def test_retry_acks_the_entry_and_waits_in_the_delayed_set_until_due(
    outbox: StatusOutbox, redis: RawRedis, keys: Keys
) -> None:
    await enqueued(outbox, report())
    [entry] = await outbox.read_new(10)
    retry = entry.report.next_attempt(T0 + 2_000)
    assert await outbox.settle(entry, "retry", retry=retry)
    assert await redis.xlen(keys.outbox_status) == 0
    assert (await redis.xpending(keys.outbox_status, STATUS_GROUP))["pending"] == 0
    assert await outbox.delayed() == [retry]
    assert await outbox.promote_due(T0 + 1_999) == 0
    assert await outbox.promote_due(T0 + 2_000) == 1
    [again] = await outbox.read_new(10)
    assert (again.report.attempt, again.report.not_before) == (2, T0 + 2_000)
    assert await outbox.delayed() == []


async def test_entry_settled_by_a_reclaiming_consumer_is_not_settled_twice(
    replica: Replica, outbox: StatusOutbox, redis: RawRedis, keys: Keys
) -> None:
    await enqueued(outbox, report())
    [entry] = await outbox.read_new(10)
    rescuer = replica("replica-b")
    [claimed] = await rescuer.claim_stale(0, 10)
    assert claimed == entry
    assert await rescuer.settle(claimed, "sent")
    assert not await outbox.settle(entry, "retry", retry=entry.report.next_attempt(T0))
    assert await redis.zcard(keys.outbox_status_delayed) == 0


async def test_final_state_given_up_is_looked_at_again_later(
    replica: Replica, outbox: StatusOutbox, redis: RawRedis, keys: Keys
) -> None:
    await enqueued(outbox, report(rank=5, final=True, state="failure"))
    [entry] = await outbox.read_new(10)
    await outbox.settle(entry, "gave_up", at_ms=T0 + 900_000)
    assert await redis.zscore(keys.outbox_status_unreported, "job-1") == T0 + 900_000
    assert await outbox.claim_unreported(T0 + 899_999, T0 + 5_000_000, 10) == []
    assert await outbox.claim_unreported(T0 + 900_000, T0 + 5_000_000, 10) == ["job-1"]
    assert await replica("b").claim_unreported(T0 + 900_000, T0 + 1, 10) == []
    assert await redis.zscore(keys.outbox_status_unreported, "job-1") == T0 + 5_000_000


async def test_sweep_modes_queue_a_final_state_once(outbox: StatusOutbox) -> None:
    final = report(rank=5, final=True, state="success")
    assert await outbox.enqueue(final, look_again_ms=T0, mode="final")
    assert not await outbox.enqueue(final, look_again_ms=T0, mode="final")
    assert await outbox.enqueue(final, look_again_ms=T0, mode="resend")
    entries = await outbox.read_new(10)
    await outbox.begin_send(entries[0], T0, 30_000)
    await outbox.settle(entries[0], "sent")
    assert not await outbox.enqueue(final, look_again_ms=T0, mode="resend")


async def test_malformed_entry_is_dropped(
    outbox: StatusOutbox, redis: RawRedis, keys: Keys
) -> None:
    await redis.xadd(keys.outbox_status, {"job_id": "x", "rank": "not a number"})
    await enqueued(outbox, report())
    entries = await outbox.read_new(10)
    assert [e.report.job_id for e in entries] == ["job-1"]
    assert await redis.xlen(keys.outbox_status) == 1


async def test_job_marked_final_without_report_needs_no_sweep(
    outbox: StatusOutbox, redis: RawRedis, keys: Keys
) -> None:
    await outbox.note_final("job-9", 5)
    assert await redis.hget(keys.status_record("job-9"), "final") == "5"
    assert await redis.ttl(keys.status_record("job-9")) > 0


async def test_depth_counts_due_delayed_and_unreported(outbox: StatusOutbox) -> None:
    await enqueued(outbox, report("a"), report("b", rank=5, final=True, state="success"))
    [first, _] = await outbox.read_new(1) + await outbox.read_new(1)
    await outbox.settle(first, "retry", retry=first.report.next_attempt(T0 + 5))
    depth = await outbox.depth()
    assert (depth.queued, depth.delayed, depth.unreported) == (1, 1, 1)


async def test_promote_keeps_every_field_of_the_report(outbox: StatusOutbox) -> None:
    original = replace(
        report(rank=7, final=True, state="error", attempt=3),
        description='Fehler: "Agent" verloren … ✓ \\ /',
    )
    await enqueued(outbox, original)
    [entry] = await outbox.read_new(1)
    await outbox.settle(entry, "retry", retry=original.next_attempt(T0))
    await outbox.promote_due(T0)
    [again] = await outbox.read_new(1)
    assert again.report == original.next_attempt(T0)
    assert orjson.loads(orjson.dumps(again.report.to_fields()))["final"] == "1"


async def test_consumers_that_hold_nothing_are_forgotten(
    replica: Replica, outbox: StatusOutbox, redis: RawRedis, keys: Keys
) -> None:
    await enqueued(outbox, report("job-1"), report("job-2"))
    await replica("holder").read_new(1)
    idle = replica("idle")
    [entry] = await idle.read_new(1)
    await idle.settle(entry, "sent")
    assert await outbox.prune_consumers(-1) == 1
    names = {c["name"] for c in await redis.xinfo_consumers(keys.outbox_status, STATUS_GROUP)}
    assert names == {"holder"}


async def test_forgetting_consumers_before_the_group_exists_does_nothing(
    replica: Replica,
) -> None:
    assert await replica("fresh").prune_consumers(-1) == 0
