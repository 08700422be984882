"""A client's inbox: bounded, ordered, and closed for good once the fan-out drops it."""

from __future__ import annotations

import asyncio

from raibid_api.logs.fanout import Batch, Subscription, entry_key


def log(entry_id: str) -> tuple[str, dict[str, str]]:
    return entry_id, {"type": "log", "line": entry_id}


async def test_receive_hands_over_every_queued_entry_in_order() -> None:
    inbox = Subscription(["job"], capacity=10)
    assert inbox.offer(Batch("job", [log("1-0"), log("1-1")]))
    assert inbox.offer(Batch("job", [log("2-0")]))
    assert await inbox.receive_entries(0) == [log("1-0"), log("1-1"), log("2-0")]
    assert await inbox.receive_entries(0) == []


async def test_receive_waits_for_an_offer() -> None:
    inbox = Subscription(["job"], capacity=10)
    waiting = asyncio.create_task(inbox.receive_entries(60))
    await asyncio.sleep(0)  # let it start waiting
    assert not waiting.done()
    inbox.offer(Batch("job", [log("1-0")]))
    assert await asyncio.wait_for(waiting, 5) == [log("1-0")]


async def test_offer_over_capacity_queues_nothing() -> None:
    inbox = Subscription(["job"], capacity=3)
    assert inbox.offer(Batch("job", [log("1-0"), log("1-1")]))
    assert not inbox.offer(Batch("job", [log("2-0"), log("2-1")]))
    assert await inbox.receive_entries(0) == [log("1-0"), log("1-1")]


async def test_closed_inbox_answers_none_even_with_entries_queued() -> None:
    inbox = Subscription(["job"], capacity=3)
    inbox.offer(Batch("job", [log("1-0")]))
    inbox.close()
    assert inbox.closed
    assert await inbox.receive_entries(60) is None


async def test_close_wakes_a_waiting_receive() -> None:
    inbox = Subscription(["job"], capacity=3)
    waiting = asyncio.create_task(inbox.receive_entries(60))
    await asyncio.sleep(0)
    inbox.close()
    assert await asyncio.wait_for(waiting, 5) is None


def test_entry_ids_order_numerically_not_as_text() -> None:
    assert entry_key("10-0") > entry_key("9-0")
    assert entry_key("5-10") > entry_key("5-9")
    assert entry_key("5") == (5, 0)


async def test_a_filtered_inbox_keeps_only_what_it_accepts() -> None:
    inbox = Subscription(["job"], capacity=10, accept=lambda entry: entry[0] != "1-1")
    assert inbox.offer(Batch("job", [log("1-0"), log("1-1"), log("1-2")]))
    assert inbox.offer(Batch("job", [log("1-1")]))
    assert await inbox.receive_entries(0) == [log("1-0"), log("1-2")]


def test_a_batch_shares_what_the_first_client_worked_out() -> None:
    batch = Batch("job", [log("1-0"), log("2-0")])
    calls: list[str] = []

    def make(b: Batch) -> int:
        calls.append(b.channel)
        return len(b.entries)

    assert batch.shared("view", make) == 2
    assert batch.shared("view", make) == 2
    assert calls == ["job"]
    assert (batch.first, batch.last) == ((1, 0), (2, 0))
