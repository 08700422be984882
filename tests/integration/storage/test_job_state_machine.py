"""Model-based test of the Lua state machine: actors race; record, indexes and queue agree."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from raibid_api.config import RedisSettings
from raibid_api.domain.jobs import JobId, JobStatus
from raibid_api.domain.states import TRANSITIONS, can_leave
from raibid_api.embedded import EmbeddedRedis
from raibid_api.errors import TransitionConflictError
from raibid_api.jobs.cursor import CursorCodec
from raibid_api.jobs.service import JobService, ManualTrigger
from raibid_api.storage.connection import create_redis
from raibid_api.storage.job_store import JobStore
from raibid_api.storage.keys import Keys
from tests.support.factories import ManualClock

EDGES = [(source, target) for source, targets in TRANSITIONS.items() for target in targets]


def chain_exists(
    start: JobStatus, end: JobStatus, moves: list[tuple[JobStatus, JobStatus]]
) -> bool:
    """Whether the successful moves, in some order, lead from ``start`` to ``end``."""
    for order in itertools.permutations(moves):
        status = start
        for source, target in order:
            if source != status:
                break
            status = target
        else:
            if status == end:
                return True
    return False


class JobLifecycle(RuleBasedStateMachine):
    jobs = Bundle("jobs")
    url = ""  # the test server's, set by the test before the machine runs

    def __init__(self) -> None:
        super().__init__()
        url = self.url
        self.loop = asyncio.new_event_loop()
        self.keys = Keys(f"sm{id(self)}")
        self.redis: Redis = create_redis(url, RedisSettings())
        self.clock = ManualClock()
        self.store = JobStore(self.redis, self.keys, retention_s=600, status_maxlen=1000)
        self.service = JobService(
            self.store, self.clock, CursorCodec(b"k" * 32),
            public_url="http://ci", clone_url_schemes=["https"],
        )  # fmt: skip
        self.model: dict[str, JobStatus] = {}
        self.status_events: dict[str, int] = {}
        self.run(self.store.ensure_queue_group())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        async def clean() -> None:
            async for key in self.redis.scan_iter(match=f"{self.keys.prefix}:*"):
                await self.redis.delete(key)
            await self.redis.aclose()

        self.run(clean())
        self.loop.close()

    @rule(target=jobs, branch=st.sampled_from(["main", "dev"]))
    def create(self, branch: str) -> str:
        self.clock.advance(0.001)
        trigger = ManualTrigger("acme/widgets", "https://git.example.org/a.git", branch=branch)
        job = self.run(self.service.trigger(trigger))
        self.model[job["id"]] = JobStatus.PENDING
        self.status_events[job["id"]] = 0
        return str(job["id"])

    async def _attempt(self, job_id: str, source: JobStatus, target: JobStatus) -> bool:
        job = await self.store.get(job_id)
        assert job is not None
        requeue = source == JobStatus.RUNNING and target == JobStatus.PENDING
        fields = {"attempt": job["attempt"] + 1} if requeue else {"agent_id": "a"}
        try:
            await self.store.transition(job | {"status": source.value}, target.value,
                                        self.clock.now_ms(), fields, requeue=requeue)  # fmt: skip
        except TransitionConflictError:
            return False
        return True

    @rule(job_id=jobs, edge=st.sampled_from(EDGES))
    def transition(self, job_id: str, edge: tuple[JobStatus, JobStatus]) -> None:
        source, target = edge
        done = self.run(self._attempt(job_id, source, target))
        assert done == (self.model[job_id] == source)
        if done:
            self.model[job_id] = target
            self.status_events[job_id] += 1

    @rule(job_id=jobs, edges=st.lists(st.sampled_from(EDGES), min_size=2, max_size=4))
    def race(self, job_id: str, edges: list[tuple[JobStatus, JobStatus]]) -> None:
        async def together() -> list[bool]:
            return list(await asyncio.gather(*(self._attempt(job_id, s, t) for s, t in edges)))

        results = self.run(together())
        won = [edge for edge, ok in zip(edges, results, strict=True) if ok]
        actual = JobStatus(self.run(self.store.get(job_id))["status"])
        assert chain_exists(self.model[job_id], actual, won)
        self.model[job_id] = actual
        self.status_events[job_id] += len(won)

    @rule(job_id=jobs)
    def cancel(self, job_id: str) -> None:
        before = self.model[job_id]
        try:
            job = self.run(self.service.cancel(JobId(job_id)))
        except TransitionConflictError as exc:
            conflict = exc
        else:
            assert can_leave(before, JobStatus.CANCELLED)
            assert job["status"] == "cancelled"
            self.model[job_id] = JobStatus.CANCELLED
            self.status_events[job_id] += 1
            return
        assert before.is_terminal
        assert conflict.current is not None
        assert conflict.current["status"] == before

    @rule(target=jobs, job_id=jobs)
    def retry(self, job_id: str) -> str:
        try:
            job = self.run(self.service.retry(JobId(job_id)))
        except TransitionConflictError:
            assert not self.model[job_id].is_terminal
            return job_id
        assert self.model[job_id].is_terminal
        assert (job["retry_of"], job["status"], job["event"]) == (job_id, "pending", "retry")
        self.model[job["id"]] = JobStatus.PENDING
        self.status_events[job["id"]] = 0
        return str(job["id"])

    @invariant()
    def storage_agrees_with_the_model(self) -> None:
        self.run(self._check())

    async def _check(self) -> None:
        r, k = self.redis, self.keys
        live = 0
        for job_id, status in self.model.items():
            stored = await self.store.get(job_id)
            assert stored is not None
            assert stored["status"] == status
            for other in JobStatus:
                in_index = await r.zscore(k.index_status(other), job_id) is not None
                assert in_index == (other == status)
            has_entry = await r.hget(k.job(job_id), "_entry") is not None
            assert has_entry == (not status.is_terminal)
            live += not status.is_terminal
            assert await r.xlen(k.events(job_id)) == self.status_events[job_id]
        assert await r.xlen(k.queue) == live
        assert await r.zcard(k.index_all) == len(self.model)


def test_state_machine_matches_the_transition_table(redis_server: EmbeddedRedis) -> None:
    JobLifecycle.url = redis_server.url
    run_state_machine_as_test(
        JobLifecycle,
        settings=hsettings(max_examples=40, stateful_step_count=25, deadline=None, database=None),
    )
