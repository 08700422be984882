"""The calls an agent makes about the job it holds: heartbeat, logs (with offsets), complete, and
what they do once the job was cancelled under it."""

from __future__ import annotations

import pytest

from raibid_api.domain.jobs import format_time
from raibid_api.storage.keys import GROUP
from tests.support.agent_protocol import (
    LEASE_SECONDS,
    READ,
    ProtocolApp,
    assert_error,
)


async def test_heartbeat_extends_the_lease_from_now(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()
    api.clock.advance(LEASE_SECONDS - 5)

    answer = await api.heartbeat(held)
    api.clock.advance(LEASE_SECONDS - 5)  # past the first lease, within the extended one
    moved = await api.reaper.reap_once()

    assert answer == {
        "cancel": False,
        "lease_expires_at": format_time(api.clock.now_ms() + 5_000),
    }
    assert moved == 0
    job = await api.job(held.id)
    assert (job["status"], job["attempt"]) == ("running", 1)


async def test_log_batches_are_appended_in_order(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()

    counts = [
        await api.send_logs(held, ["one", "two"]),
        await api.send_logs(held, [{"line": "three", "stream": "stderr"}, {"line": "four"}]),
        await api.send_logs(held, ["five"]),
    ]

    assert counts == [2, 4, 5]
    assert await api.log_lines(held.id) == [
        ("stdout", "one"), ("stdout", "two"), ("stderr", "three"), ("stdout", "four"),
        ("stdout", "five"),
    ]  # fmt: skip
    text = await api.http.get(f"/jobs/{held.id}/logs", headers=READ)
    started = "[raibid] attempt 1 started on agent agent-1"
    assert text.text == f"{started}\none\ntwo\nthree\nfour\nfive\n"


async def test_a_retried_batch_is_not_doubled(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()

    first = await api.send_logs(held, ["a", "b", "c"], offset=0)
    retried = await api.send_logs(held, ["a", "b", "c"], offset=0)

    assert (first, retried) == (3, 3)
    assert [line for _, line in await api.log_lines(held.id)] == ["a", "b", "c"]


async def test_a_batch_overlapping_the_stored_lines_appends_only_the_new_ones(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()
    await api.send_logs(held, ["a", "b", "c"], offset=0)

    count = await api.send_logs(held, ["c", "d", "e"], offset=2)

    assert count == 5
    assert [line for _, line in await api.log_lines(held.id)] == ["a", "b", "c", "d", "e"]


async def test_a_batch_past_the_end_of_the_log_answers_409_with_the_expected_offset(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()
    await api.send_logs(held, ["a", "b"], offset=0)
    before = await api.snapshot(held.id)

    response = await api.call(held.id, "logs", held.token, {"offset": 5, "lines": ["f"]})

    body = assert_error(response, 409, "log_offset_gap")
    assert body["expected_offset"] == 2
    assert await api.snapshot(held.id) == before


async def test_a_batch_without_offset_is_appended_after_the_last_line(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()
    await api.send_logs(held, ["a"], offset=0)

    count = await api.send_logs(held, ["b"])

    assert count == 2
    assert [line for _, line in await api.log_lines(held.id)] == ["a", "b"]


async def test_complete_success_ends_the_job_and_deletes_its_queue_entry(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()
    api.clock.advance(2.5)

    response = await api.complete(held, "success")

    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["status"], job["exit_code"], job["reason"]) == ("success", 0, None)
    assert job["finished_at"] == format_time(api.clock.now_ms())
    assert job["duration"] == 2.5
    assert await api.job(held.id) == job
    assert await api.statuses(held.id) == ["running", "success"]
    assert await api.queue_length() == 0
    assert (await api.redis.xpending(api.keys.queue, GROUP))["pending"] == 0


async def test_complete_failed_keeps_the_exit_code_and_reason(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()

    response = await api.complete(held, "failed", exit_code=7, reason="step test failed")

    assert response.status_code == 200, response.text
    job = await api.job(held.id)
    assert (job["status"], job["exit_code"], job["reason"]) == ("failed", 7, "step test failed")
    assert await api.queue_length() == 0


async def test_repeated_complete_with_the_same_outcome_answers_200_and_changes_nothing(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()
    first = await api.complete(held, "failed", exit_code=2)
    after_first = await api.snapshot(held.id)
    api.clock.advance(3)

    repeated = await api.complete(held, "failed", exit_code=2)

    assert repeated.status_code == 200, repeated.text
    assert repeated.json() == first.json()
    assert await api.snapshot(held.id) == after_first


async def test_complete_with_another_outcome_after_a_complete_answers_409(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()
    await api.complete(held, "success")
    before = await api.snapshot(held.id)

    response = await api.complete(held, "failed", exit_code=1)

    assert_error(response, 409, "already_completed")
    assert await api.snapshot(held.id) == before
    assert (await api.job(held.id))["status"] == "success"


async def test_cancel_of_a_running_job_is_told_on_the_next_heartbeat_without_a_new_lease(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()
    lease_end = format_time(api.clock.now_ms() + LEASE_SECONDS * 1000)
    await api.cancel(held.id)
    api.clock.advance(1)

    answer = await api.heartbeat(held)

    assert answer == {"cancel": True, "lease_expires_at": lease_end}
    assert (await api.job(held.id))["status"] == "cancelled"


async def test_logs_and_complete_of_a_cancelled_job_are_taken_and_it_stays_cancelled(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()
    await api.send_logs(held, ["building"], offset=0)
    await api.cancel(held.id)

    count = await api.send_logs(held, ["killed by cancel"], offset=1)
    completed = await api.complete(held, "failed", exit_code=None, reason="cancelled")
    repeated = await api.complete(held, "failed", exit_code=None, reason="cancelled")

    assert count == 2
    assert completed.status_code == 200, completed.text
    assert repeated.status_code == 200, repeated.text
    assert completed.json()["status"] == "cancelled"
    job = await api.job(held.id)
    assert (job["status"], job["reason"]) == ("cancelled", "cancelled")
    assert [line for _, line in await api.log_lines(held.id)] == ["building", "killed by cancel"]
    assert await api.statuses(held.id) == ["running", "cancelled"]
    assert await api.queue_length() == 0


async def test_every_call_about_a_completed_job_is_refused_with_409(api: ProtocolApp) -> None:
    held = await api.trigger_and_claim()
    await api.cancel(held.id)
    await api.complete(held, "failed", reason="cancelled")
    before = await api.snapshot(held.id)

    beat = await api.call(held.id, "heartbeat", held.token)
    logs = await api.call(held.id, "logs", held.token, {"lines": ["late"]})
    other = await api.complete(held, "success")

    assert_error(beat, 409, "already_completed")
    assert_error(logs, 409, "already_completed")
    assert_error(other, 409, "already_completed")
    assert await api.snapshot(held.id) == before


async def test_the_token_of_a_cancelled_job_stops_working_when_its_lease_ends(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()
    await api.cancel(held.id)
    api.expire_lease()
    before = await api.snapshot(held.id)

    beat = await api.call(held.id, "heartbeat", held.token)
    logs = await api.call(held.id, "logs", held.token, {"lines": ["late"]})
    done = await api.complete(held, "failed", reason="cancelled")

    for response in (beat, logs, done):
        assert_error(response, 401, "lease_expired")
    assert await api.snapshot(held.id) == before
    assert (await api.job(held.id))["status"] == "cancelled"


async def test_a_batch_without_offset_sent_again_under_its_batch_id_is_not_doubled(
    api: ProtocolApp,
) -> None:
    held = await api.trigger_and_claim()

    answers = [
        await api.call(held.id, "logs", held.token, {"batch_id": batch, "lines": lines})
        for batch, lines in (("b-1", ["a", "b"]), ("b-1", ["a", "b"]), ("b-2", ["c"]))
    ]

    assert [(a.status_code, a.json()) for a in answers] == [
        (200, {"lines": 2}), (200, {"lines": 2}), (200, {"lines": 3}),
    ]  # fmt: skip
    assert [line for _, line in await api.log_lines(held.id)] == ["a", "b", "c"]


@pytest.mark.parametrize("batch_id", ["", "has space", "x" * 65, 7])
async def test_a_malformed_batch_id_answers_422_and_stores_nothing(
    api: ProtocolApp, batch_id: object
) -> None:
    held = await api.trigger_and_claim()
    before = await api.snapshot(held.id)

    response = await api.call(held.id, "logs", held.token, {"batch_id": batch_id, "lines": ["a"]})

    assert response.status_code == 422, response.text
    assert await api.snapshot(held.id) == before
