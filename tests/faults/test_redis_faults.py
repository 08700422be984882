"""Redis breaking under a real server under load: killed and restarted, stalled, or emptied.

Each case runs `raibid-api serve` as a process on a redis-server the test owns, sends signed
webhooks (and, for the restart without data, agent claims) while the fault happens, and then
checks what Redis holds against what the clients were told. The figures are printed (see
`tests.support.faults.Figures`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from tests.support.faults import (
    AGENT_TOKEN,
    SOCKET_TIMEOUT_S,
    Agents,
    Load,
    ThreadedForge,
    Threads,
    check_outcome,
    figures,
    seconds_until_ready,
    spools_empty,
    start_server,
    stop_server,
)
from tests.support.polling import eventually_sync
from tests.support.redis_nodes import RedisNode
from tests.support.server_process import Server

pytestmark = pytest.mark.faults
FORGE_TOKEN = "fault-forge-token-0123456789"
WARM_S = 1.0  # load before the fault
DOWN_S = 2.0  # how long Redis stays down or stalled
BOUND_S = SOCKET_TIMEOUT_S + 1.0  # the longest a request may take during the fault


@pytest.fixture
def cleanup() -> Iterator[list[Server | RedisNode]]:
    """Processes to end after the test, whatever happened."""
    started: list[Server | RedisNode] = []
    yield started
    for item in started:
        if isinstance(item, RedisNode):
            item.stop()
        else:
            stop_server(item)


def _load_for(load: Threads, seconds: float, kind: str = "webhook") -> None:
    """Let ``load`` run ``seconds`` and get at least one acknowledged answer of ``kind``."""
    before = load.count(kind)
    deadline = time.monotonic() + seconds
    eventually_sync(
        lambda: time.monotonic() >= deadline and load.count(kind) > before,
        seconds + 15.0, f"the load to go on ({kind})",
    )  # fmt: skip


@pytest.mark.parametrize("persistence", ["always", "everysec", "none"])
def test_redis_killed_and_restarted(
    tmp_path: Path, cleanup: list[Server | RedisNode], persistence: str
) -> None:
    aof = (["--appendonly", "no"] if persistence == "none"
           else ["--appendonly", "yes", "--appendfsync", persistence])  # fmt: skip
    node = RedisNode(tmp_path / "redis", aof).start()
    cleanup.append(node)
    server = start_server(tmp_path, {"url": node.url})
    cleanup.append(server)
    load = Load([server.base_url])
    agents = Agents([server.base_url], workers=1)
    _load_for(load, WARM_S)
    acknowledged = load.count("webhook")

    fault = time.monotonic()
    node.kill()
    eventually_sync(lambda: load.count("webhook") > acknowledged, 10.0, "answers while down")
    time.sleep(DOWN_S)  # the outage itself: Redis stays down this long
    node.start()
    end = time.monotonic()
    ready = seconds_until_ready([server], end)
    _load_for(load, WARM_S)
    _load_for(agents, 0.0, "claim")  # claims work again: the queue group is back
    answers = load.stop() + agents.stop()
    eventually_sync(lambda: spools_empty(tmp_path), 20.0, "the spool to be replayed")

    with Redis.from_url(node.url, decode_responses=True) as redis:
        outcome = check_outcome(redis, answers)
    # without persistence Redis forgot everything stored before the fault, by definition: what
    # counts is what was spooled, or stored after the fault
    stored_before = {a.key for a in answers if a.acknowledged and not a.spooled and a.sent < fault}
    lost = [k for k in outcome.lost if persistence != "none" or k not in stored_before]
    claims = [a for a in answers if a.kind == "claim" and a.sent > end + ready]
    result = figures(f"redis SIGKILL, restart ({persistence})", answers, outcome, (fault, end),
                     ready, forgotten_with_redis=len(outcome.lost) - len(lost),
                     claim_statuses_after=sorted({a.status or 0 for a in claims}))  # fmt: skip
    result.report()
    assert lost == []
    assert outcome.duplicated == 0
    assert result.longest_s <= BOUND_S
    assert all(a.status in {200, 204} for a in claims), result


def test_redis_stalled(tmp_path: Path, cleanup: list[Server | RedisNode]) -> None:
    node = RedisNode(tmp_path / "redis", ["--appendonly", "yes"]).start()
    cleanup.append(node)
    server = start_server(tmp_path, {"url": node.url})
    cleanup.append(server)
    load = Load([server.base_url])
    _load_for(load, WARM_S)

    fault = time.monotonic()
    node.stall()
    try:
        eventually_sync(lambda: load.count("webhook") > 0, 10.0, "answers while stalled")
        time.sleep(DOWN_S)  # the stall itself
    finally:
        node.resume()
    end = time.monotonic()
    ready = seconds_until_ready([server], end)
    _load_for(load, WARM_S)
    answers = load.stop()
    eventually_sync(lambda: spools_empty(tmp_path), 20.0, "the spool to be replayed")

    with Redis.from_url(node.url, decode_responses=True) as redis:
        outcome = check_outcome(redis, answers)
        pending = redis.zcard("faults:index:status:pending")
        queued = redis.xlen("faults:jobs")
    result = figures("redis SIGSTOP, SIGCONT", answers, outcome, (fault, end), ready,
                     queue_length=queued, pending_jobs=pending)  # fmt: skip
    result.report()
    assert outcome.lost == []
    assert outcome.duplicated == 0
    assert queued == pending  # what KEDA scales on counts each job once
    assert result.longest_s <= BOUND_S


def test_a_server_replica_killed_under_load_loses_nothing_it_acknowledged(
    tmp_path: Path, cleanup: list[Server | RedisNode]
) -> None:
    node = RedisNode(tmp_path / "redis", ["--appendonly", "yes"]).start()
    cleanup.append(node)
    lease = {"lease": "2s"}
    servers = [start_server(tmp_path / f"s{i}", {"url": node.url}, jobs=lease) for i in range(2)]
    cleanup.extend(servers)
    load = Load([s.base_url for s in servers])
    # an agent takes a job and vanishes: one of the two reapers puts it back, once
    abandoned = _claim_one(servers[0].base_url, load)
    _load_for(load, WARM_S)

    fault = time.monotonic()
    stop_server(servers[0])
    _load_for(load, WARM_S)
    end = time.monotonic()
    answers = load.stop()
    eventually_sync(lambda: spools_empty(tmp_path / "s1"), 20.0, "the spool to be replayed")

    with Redis.from_url(node.url, decode_responses=True) as redis:
        eventually_sync(lambda: redis.hget(f"faults:job:{abandoned}", "attempt") == "2", 15.0,
                        "the abandoned job to be requeued")  # fmt: skip
        outcome = check_outcome(redis, answers)
    survivor = [a for a in answers if a.target == servers[1].base_url]
    result = figures("server replica SIGKILL", answers, outcome, (fault, end),
                     seconds_until_ready(servers[1:], end), abandoned_job_requeued_once=True,
                     survivor_refused=sum(1 for a in survivor if not a.acknowledged))  # fmt: skip
    result.report()
    assert outcome.lost == []
    assert outcome.duplicated == 0
    assert survivor
    assert all(a.acknowledged for a in survivor)  # the other replica served throughout


def _claim_one(base_url: str, load: Load) -> str:
    """Claim one job as an agent that will never report back; its id."""
    auth = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    eventually_sync(lambda: load.count("webhook") > 0, 10.0, "a first job")
    with httpx.Client(timeout=10.0) as http:
        answer = http.post(f"{base_url}/agent/claim", json={"agent_id": "vanishing", "wait": 5},
                           headers=auth)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return str(answer.json()["job"]["id"])


def test_two_servers_report_every_final_status_to_the_forge_in_order(
    tmp_path: Path, cleanup: list[Server | RedisNode]
) -> None:
    node = RedisNode(tmp_path / "redis", ["--appendonly", "yes"]).start()
    cleanup.append(node)
    forge = ThreadedForge(FORGE_TOKEN, {"acme/widgets"})
    try:
        forges = {"gitea": {"url": forge.url, "token": FORGE_TOKEN}}
        servers = [start_server(tmp_path / f"s{i}", {"url": node.url}, forges=forges)
                   for i in range(2)]  # fmt: skip
        cleanup.extend(servers)
        load = Load([s.base_url for s in servers], workers=1)
        agents = Agents([s.base_url for s in servers])
        eventually_sync(lambda: len(agents.completed) >= 10, 30.0, "ten jobs completed")
        load.stop()
        agents.stop()

        def reported() -> bool:
            return all(forge.posted(*job)[-1:] == ["success"] for job in agents.completed.values())

        eventually_sync(reported, 30.0, "every final state on the forge")
        for job in agents.completed.values():
            states = forge.posted(*job)
            assert states.index("success") == len(states) - 1, states  # nothing older after it
    finally:
        forge.stop()
