"""Claim-to-running latency: how soon an idle agent's long poll hands it a job just triggered.

For each job, the agent's claim (``wait: 30``) is sent first and the benchmark waits until the
server's Redis shows it blocked in XREADGROUP, so the agent is truly idle and waiting; then the job
is triggered with `POST /jobs`. Two intervals are kept, both ending when the claim's answer (the
job, now running, and its token) has arrived at the agent:

* from the moment the trigger's answer arrived (the issue's definition). The claim can win that
  race (the job is queued inside the trigger's request, before its answer is written); such a
  claim counts as 0 ms and is reported as "claim first";
* from the moment the trigger was sent: the whole path, trigger included, an upper bound.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from bench.agents.server import AGENT, WRITE, BenchServer

WARM_UP = 20
_BLOCK_DEADLINE = 5.0
TRIGGER = {"repo": "bench/latency", "clone_url": "https://git.example.test/bench/latency.git",
           "branch": "main"}  # fmt: skip


@dataclass(frozen=True)
class LatencyRun:
    """One round: per job, the milliseconds from trigger answered / sent to claim answered."""

    after_answer_ms: list[float]
    after_send_ms: list[float]
    claim_first: int


async def _until_blocked(redis: Redis) -> None:
    """Wait until a client of the server's Redis sits blocked in XREADGROUP (the long poll)."""
    deadline = time.perf_counter() + _BLOCK_DEADLINE
    while time.perf_counter() < deadline:
        clients = await redis.client_list()
        if any(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in clients):
            return
    raise TimeoutError("the claim never blocked in XREADGROUP")


async def _timed_claim(agent: httpx.AsyncClient) -> tuple[httpx.Response, float]:
    response = await agent.post("/agent/claim", json={"agent_id": "bench-idle", "wait": 30})
    return response, time.perf_counter()


async def _one_job(
    redis: Redis, agent: httpx.AsyncClient, writer: httpx.AsyncClient
) -> tuple[float, float]:
    """(ms after the trigger's answer, ms after the trigger was sent) for one job."""
    claim = asyncio.create_task(_timed_claim(agent))
    await _until_blocked(redis)
    sent = time.perf_counter()
    created = await writer.post("/jobs", json=TRIGGER)
    answered = time.perf_counter()
    response, claimed = await claim
    if created.status_code != 201 or response.status_code != 200:
        raise RuntimeError(f"trigger {created.status_code}, claim {response.status_code}")
    body = response.json()
    if body["job"]["id"] != created.json()["id"]:
        raise RuntimeError("the claim handed out another job than the one just triggered")
    done = await agent.post(
        f"/agent/jobs/{body['job']['id']}/complete", json={"status": "success", "exit_code": 0},
        headers={"Authorization": f"Bearer {body['token']}"},
    )  # fmt: skip
    if done.status_code != 200:
        raise RuntimeError(f"complete answered {done.status_code}")
    return (claimed - answered) * 1000, (claimed - sent) * 1000


async def measure_claim_latency(server: BenchServer, jobs: int) -> LatencyRun:
    """Trigger ``jobs`` jobs one after another, each claimed by the one idle agent."""
    redis = Redis.from_url(server.redis_url(), decode_responses=True)
    limits = httpx.Timeout(60.0)
    try:
        async with (
            httpx.AsyncClient(base_url=server.base_url, headers=AGENT, timeout=limits) as agent,
            httpx.AsyncClient(base_url=server.base_url, headers=WRITE, timeout=limits) as writer,
        ):
            for _ in range(WARM_UP):
                await _one_job(redis, agent, writer)
            samples = [await _one_job(redis, agent, writer) for _ in range(jobs)]
    finally:
        await redis.aclose()
    return LatencyRun(
        after_answer_ms=[max(after, 0.0) for after, _ in samples],
        after_send_ms=[sent for _, sent in samples],
        claim_first=sum(1 for after, _ in samples if after < 0),
    )
