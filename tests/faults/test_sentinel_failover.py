"""A Sentinel failover under load: the primary SIGKILLed while two servers take webhooks, claims
and log lines, on real processes (a primary, a replica, three Sentinels, all on loopback).

The servers wait for one replica (`WAIT`, the default with Sentinel) before they acknowledge a
webhook's job; what no replica acknowledged in time goes to the disk spool and is replayed once
a master with a replica is back. The killed primary is started again, as an operator (or
Kubernetes) would; the Sentinels make it a replica of the new master.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from redis import Redis

from tests.support.faults import (
    SOCKET_TIMEOUT_S,
    Agents,
    Answer,
    Load,
    Threads,
    check_outcome,
    figures,
    seconds_until_ready,
    spools_empty,
    start_server,
    stop_server,
)
from tests.support.polling import eventually_sync
from tests.support.redis_nodes import MASTER, SentinelCluster, wait_for_master
from tests.support.server_process import Server

pytestmark = pytest.mark.faults
BOUND_S = SOCKET_TIMEOUT_S + 1.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    started = SentinelCluster.start(tmp_path / "redis")
    yield started
    started.stop()


@pytest.fixture
def servers(tmp_path: Path, cluster: SentinelCluster) -> Iterator[list[Server]]:
    redis = {"sentinel": {"master": MASTER, "addresses": cluster.addresses}}
    started = [start_server(tmp_path / f"s{i}", redis) for i in range(2)]
    yield started
    for server in started:
        stop_server(server)


def _going_on(threads: Threads, kind: str) -> None:
    before = threads.count(kind)
    eventually_sync(lambda: threads.count(kind) > before, 30.0, f"{kind} to be acknowledged")


def _refused_window(answers: list[Answer], fault: float, kinds: set[str]) -> float:
    """Seconds from the fault to the first write of ``kinds`` Redis took after it (a webhook
    counts once it is stored, not spooled)."""
    stored = sorted(a.sent + a.seconds for a in answers
                    if a.kind in kinds and a.acknowledged and not a.spooled
                    and a.sent > fault)  # fmt: skip
    return round(stored[0] - fault, 2) if stored else float("inf")


def test_sentinel_failover_loses_no_acknowledged_webhook_and_doubles_no_job(
    tmp_path: Path, cluster: SentinelCluster, servers: list[Server]
) -> None:
    urls = [s.base_url for s in servers]
    load = Load(urls)
    agents = Agents(urls)
    _going_on(load, "webhook")
    _going_on(agents, "logs")

    fault = time.monotonic()
    cluster.primary.kill()
    failover_s = wait_for_master(cluster, cluster.replica.port, 30.0)
    end = time.monotonic()
    ready = seconds_until_ready(servers, end)
    # back, as a replica of the master the Sentinels name (as a Kubernetes operator starts it):
    # WAIT can be met again
    cluster.primary.args += ["--replicaof", "127.0.0.1", str(cluster.replica.port)]
    cluster.primary.start()
    eventually_sync(cluster.replica_in_sync_with_new_master, 30.0, "the old primary to follow")
    back = time.monotonic()
    _going_on(load, "webhook")
    _going_on(agents, "claim")
    answers = load.stop() + agents.stop()
    eventually_sync(lambda: spools_empty(tmp_path / "s0") and spools_empty(tmp_path / "s1"),
                    30.0, "both spools to be replayed")  # fmt: skip

    with Redis(port=cluster.replica.port, decode_responses=True) as redis:
        outcome = check_outcome(redis, answers)
        lines_lost = sum(
            1 for job_id, shipped in agents.shipped.items()
            if _log_lines(redis, job_id) < shipped
        )  # fmt: skip
    result = figures(
        "sentinel failover (primary SIGKILL)", answers, outcome, (fault, end), ready,
        failover_s=round(failover_s, 2),
        refused_write_window_s=_refused_window(answers, fault, {"claim", "logs", "complete"}),
        webhooks_spooled_until_s=_refused_window(answers, fault, {"webhook"}),
        old_primary_back_s=round(back - fault, 2),
        log_batches_acknowledged=len(agents.shipped), log_batches_lost=lines_lost,
    )  # fmt: skip
    result.report()
    assert outcome.lost == []
    assert outcome.duplicated == 0
    assert result.longest_s <= BOUND_S


def _log_lines(redis: Redis, job_id: str) -> int:
    entries = cast("list[tuple[str, dict[str, str]]]", redis.xrange(f"faults:job:{job_id}:events"))
    return sum(1 for _, fields in entries
               if fields.get("type") == "log" and fields["line"].startswith("line "))  # fmt: skip
