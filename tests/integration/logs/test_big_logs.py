"""Big logs: the head and the tail are kept with a mark between; long lines are cut with a mark."""

from __future__ import annotations

import json

from httpx_sse import ServerSentEvent

from raibid_api.jobs.agents import cut_line
from tests.support.live_logs import (
    CLAIM_NOTE,
    READ,
    Held,
    LiveServer,
    ServerFactory,
    read_events,
    read_until_end,
    sse,
)

MAX_LINES = 100  # the smallest logs.max_lines


async def big_job(server: LiveServer, count: int) -> Held:
    held = await server.claimed_job()
    for start in range(0, count, 50):
        await server.send_logs(held, [f"line {i}" for i in range(start, start + 50)])
    return held


def log_lines(events: list[ServerSentEvent]) -> list[str]:
    return [json.loads(e.data)["line"] for e in events if e.event == "log"]


async def test_a_big_log_keeps_its_head_and_tail_and_says_how_many_lines_were_dropped(
    start_server: ServerFactory,
) -> None:
    async with start_server(logs={"max_lines": MAX_LINES}) as server:
        held = await big_job(server, 400)
        await server.complete(held)
        stored = await server.redis.xlen(server.keys.events(held.id))
        text = (await server.http.get(f"/jobs/{held.id}/logs", headers=READ)).text.splitlines()
        async with sse(server.http, held.id) as events:
            received = await read_until_end(events)
    assert stored <= MAX_LINES + 1  # the final status comes on top
    # the first half: the server's note and the first lines, in order, none missing
    head = text[: text.index(next(t for t in text if t.startswith("[…")))]
    assert head == [CLAIM_NOTE] + [f"line {i}" for i in range(len(head) - 1)]
    assert len(head) >= MAX_LINES // 2 - 1  # half the entries, one of them a status
    gap_line = text[len(head)]
    tail = text[len(head) + 1 :]
    assert tail[-1] == "line 399"
    assert tail == [f"line {i}" for i in range(400 - len(tail), 400)]
    dropped = 400 - len(tail) - (len(head) - 1)
    assert gap_line == f"[… {dropped} lines dropped …]"
    gaps = [json.loads(e.data) for e in received if e.event == "gap"]
    assert gaps == [{"job_id": held.id, "dropped": dropped}]
    assert log_lines(received) == head + tail


async def test_resuming_from_a_dropped_line_gives_a_gap_then_the_oldest_kept_entry(
    start_server: ServerFactory,
) -> None:
    async with start_server(logs={"max_lines": MAX_LINES}) as server:
        held = await big_job(server, 60)
        async with sse(server.http, held.id) as events:
            first = await read_events(events, 61)
        resume_at = first[55].id  # line 54: in the middle, about to be dropped
        for start in range(60, 360, 50):
            await server.send_logs(held, [f"line {i}" for i in range(start, start + 50)])
        await server.complete(held)
        kept = await server.entry_ids(held.id)
        assert resume_at not in kept
        async with sse(server.http, held.id, headers={"Last-Event-ID": str(resume_at)}) as events:
            rest = await read_until_end(events)
    assert rest[0].event == "gap"
    assert json.loads(rest[0].data) == {"job_id": held.id, "dropped": None}
    oldest_after = next(
        i
        for i in kept
        if tuple(map(int, i.split("-"))) > tuple(map(int, str(resume_at).split("-")))
    )
    assert rest[1].id == oldest_after
    assert log_lines(rest)[-1] == "line 359"


async def test_a_line_over_the_limit_is_stored_cut_with_a_mark(server: LiveServer) -> None:
    held = await server.claimed_job()
    long_line = "é" * 40_000  # 80,000 bytes
    await server.send_logs(held, ["short", long_line])
    entries = (
        await server.http.get(
            f"/jobs/{held.id}/logs", headers=READ | {"Accept": "application/json"}
        )
    ).json()
    stored = entries[-1]["data"]["line"]
    assert len(stored.encode()) <= 65_536
    assert stored.startswith("é" * 1000)
    kept = stored.split(" [… ")[0]
    assert stored.endswith(f" [… {80_000 - len(kept.encode())} bytes cut]")
    assert entries[-2]["data"]["line"] == "short"


def test_cut_line_keeps_short_lines_and_counts_what_it_cuts() -> None:
    assert cut_line("abc", 256) == "abc"
    cut = cut_line("x" * 1000, 256)
    assert len(cut.encode()) <= 256
    assert cut == "x" * (256 - len(" [… 1000 bytes cut]".encode())) + " [… 765 bytes cut]"
