"""Log ingestion: how many lines a second agents get into the server, none lost or reordered.

The agents are the reference agent's own shipping path: `AgentClient` + `LogShipper` (batches of
up to 1,000 lines, at most 100 ms behind, each batch carrying its offset). Each agent holds a job
it claimed for real; afterwards every job's log is read back through `GET /jobs/{id}/logs` and
compared, line by line, with what was sent.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

import httpx

from bench.agents.server import AGENT, AGENT_TOKEN, WRITE, BenchServer
from raibid_api.agent.client import AgentClient
from raibid_api.agent.log_shipper import LogShipper

PAD = "x" * 60  # with the prefix, a line of about 80 bytes: a typical build output line
RAW_BATCH = 1_000
SHIP_DEADLINE = 120.0


@dataclass(frozen=True)
class Held:
    """A job a benchmark agent claimed."""

    job_id: str
    token: str


@dataclass(frozen=True)
class Check:
    """How a job's stored log compares with the lines sent."""

    sent: int
    stored: int
    lost: int
    extra: int
    in_order: bool

    @property
    def perfect(self) -> bool:
        """Every line there once, in order."""
        return self.lost == 0 and self.extra == 0 and self.in_order


@dataclass(frozen=True)
class SingleRun:
    """One agent sending as fast as it can."""

    lines: int
    seconds: float
    server_cpu_s: float
    check: Check

    @property
    def rate(self) -> float:
        """Lines per second."""
        return self.lines / self.seconds


@dataclass(frozen=True)
class FleetRun:
    """Many agents, each at a fixed rate."""

    agents: int
    lines: int
    offered_seconds: float
    seconds: float
    server_cpu_s: float
    agents_cpu_s: float
    worst_drain_s: float
    worst_backlog_lines: int
    checks: list[Check]

    @property
    def offered_rate(self) -> float:
        """Lines per second the agents produced, all together."""
        return self.lines / self.offered_seconds

    @property
    def rate(self) -> float:
        """Lines per second stored, all agents together, until the last line was stored."""
        return self.lines / self.seconds


async def claim_jobs(server: BenchServer, count: int) -> list[Held]:
    """Trigger ``count`` jobs and claim each, as ``count`` agents would."""
    held: list[Held] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as http:
        for index in range(count):
            trigger = {"repo": "bench/logs", "clone_url": "https://git.example.test/b/l.git",
                       "branch": f"agent-{index}"}  # fmt: skip
            created = await http.post("/jobs", json=trigger, headers=WRITE)
            claim = {"agent_id": f"bench-agent-{index}", "wait": 5}
            answer = await http.post("/agent/claim", json=claim, headers=AGENT)
            if created.status_code != 201 or answer.status_code != 200:
                raise RuntimeError(f"trigger {created.status_code}, claim {answer.status_code}")
            held.append(Held(answer.json()["job"]["id"], answer.json()["token"]))
    return held


async def complete_jobs(server: BenchServer, jobs: list[Held]) -> None:
    """End the benchmark's jobs, so the next round starts with an empty queue."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as http:
        for job in jobs:
            await http.post(
                f"/agent/jobs/{job.job_id}/complete", json={"status": "success", "exit_code": 0},
                headers={"Authorization": f"Bearer {job.token}"},
            )  # fmt: skip


async def check_log(server: BenchServer, job: Held, sent: list[str]) -> Check:
    """Compare the job's stored log with ``sent``."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120.0) as http:
        response = await http.get(f"/jobs/{job.job_id}/logs", headers=WRITE)
    stored = response.text.splitlines()
    position = {line: index for index, line in enumerate(sent)}
    known = [position[line] for line in stored if line in position]
    return Check(
        sent=len(sent),
        stored=len(stored),
        lost=len(set(sent) - set(stored)),
        extra=len(stored) - len(set(known)),
        in_order=all(a < b for a, b in itertools.pairwise(known)),
    )


async def single_agent(server: BenchServer, lines: int) -> SingleRun:
    """One agent's `LogShipper` given ``lines`` lines as fast as it takes them."""
    [job] = await claim_jobs(server, 1)
    sent = [f"line {index:07d} {PAD}" for index in range(lines)]
    async with AgentClient(server.base_url, AGENT_TOKEN) as client:
        shipper = LogShipper(client, job.job_id, job.token)
        shipper.start()
        cpu, started = server.cpu_seconds(), time.perf_counter()
        for line in sent:
            await shipper.put("stdout", line)
        if not await shipper.close(within=SHIP_DEADLINE):
            raise RuntimeError("the shipper could not send every line")
        seconds, cpu = time.perf_counter() - started, server.cpu_seconds() - cpu
    check = await check_log(server, job, sent)
    await complete_jobs(server, [job])
    return SingleRun(lines, seconds, cpu, check)


async def raw_batches(server: BenchServer, lines: int) -> SingleRun:
    """One connection POSTing batches of 1,000 lines back to back: the server's own ceiling."""
    [job] = await claim_jobs(server, 1)
    sent = [f"line {index:07d} {PAD}" for index in range(lines)]
    headers = {"Authorization": f"Bearer {job.token}"}
    path = f"/agent/jobs/{job.job_id}/logs"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as http:
        cpu, started = server.cpu_seconds(), time.perf_counter()
        for offset in range(0, lines, RAW_BATCH):
            body = {"offset": offset, "lines": sent[offset : offset + RAW_BATCH]}
            response = await http.post(path, json=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"a batch was refused: {response.status_code} {response.text}")
        seconds, cpu = time.perf_counter() - started, server.cpu_seconds() - cpu
    check = await check_log(server, job, sent)
    await complete_jobs(server, [job])
    return SingleRun(lines, seconds, cpu, check)


@dataclass
class _Paced:
    """One fleet agent: its shipper, what it sent, and how far behind it fell."""

    shipper: LogShipper
    sent: list[str]
    drain_s: float = 0.0
    backlog: int = 0


async def _produce(agent: _Paced, index: int, rate: int, seconds: float) -> None:
    tick = 0.1
    per_tick = int(rate * tick)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for step in range(round(seconds / tick)):
        # pacing to a schedule, not synchronisation: the agent emits its lines at a fixed rate
        await asyncio.sleep(max(0.0, start + step * tick - loop.time()))
        agent.backlog = max(agent.backlog, agent.shipper.unsent)
        for _ in range(per_tick):
            line = f"agent {index:02d} line {len(agent.sent):07d} {PAD}"
            agent.sent.append(line)
            await agent.shipper.put("stdout", line)
    produced = time.perf_counter()
    if not await agent.shipper.close(within=SHIP_DEADLINE):
        raise RuntimeError(f"agent {index} could not send every line")
    agent.drain_s = time.perf_counter() - produced


async def fleet(server: BenchServer, agents: int, rate: int, seconds: float) -> FleetRun:
    """``agents`` agents, each its own client and shipper, each sending ``rate`` lines a second."""
    jobs = await claim_jobs(server, agents)
    clients = [AgentClient(server.base_url, AGENT_TOKEN) for _ in jobs]
    paced = [
        _Paced(LogShipper(c, j.job_id, j.token), []) for c, j in zip(clients, jobs, strict=True)
    ]
    try:
        for agent in paced:
            agent.shipper.start()
        cpu, own, started = server.cpu_seconds(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(_produce(a, i, rate, seconds) for i, a in enumerate(paced)))
        elapsed, cpu = time.perf_counter() - started, server.cpu_seconds() - cpu
        own = time.process_time() - own
    finally:
        for client in clients:
            await client.aclose()
    checks = [
        await check_log(server, job, agent.sent) for job, agent in zip(jobs, paced, strict=True)
    ]
    await complete_jobs(server, jobs)
    return FleetRun(
        agents=agents,
        lines=sum(len(a.sent) for a in paced),
        offered_seconds=seconds,
        seconds=elapsed,
        server_cpu_s=cpu,
        agents_cpu_s=own,
        worst_drain_s=max(a.drain_s for a in paced),
        worst_backlog_lines=max(a.backlog for a in paced),
        checks=checks,
    )
