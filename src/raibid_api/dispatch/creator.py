"""Creation of agent Jobs: one per pending CI job that no idle agent Job is there to take.

An agent claims whichever job the queue hands it, not the one its Job is named after, so the
rule counts: while more jobs wait than agent Jobs are up and not holding a job, create Jobs for the
oldest waiting jobs that have none yet. Names are deterministic (`agent_job_name`), so replicas
that decide the same at once create each Job once; the others get ``AlreadyExists``.

Each Job gets its Secret right after it: the claim token of its job and attempt, owned by the Job.
The token is deterministic too (an HMAC under the cluster's claim key), so whichever replica
creates the Secret writes the same one. A Job whose Secret this process has not seen created (its
creator stopped between the two calls, or another replica made it) gets it on the next pass; its
pod waits for the volume meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from raibid_api.dispatch.cluster import ClusterApi
from raibid_api.dispatch.manifests import (
    AgentJobTemplate,
    agent_job,
    agent_job_name,
    claim_token_secret,
)
from raibid_api.dispatch.observed import AgentJob, Phase
from raibid_api.dispatch.sources import PendingJob
from raibid_api.jobs.claim_tokens import mint_claim_token

_log = structlog.get_logger("raibid_api.dispatch")
MAX_CREATES_PER_PASS = 50  # a burst of jobs gets its agents over a few passes, not in one flood


def idle_agents(agent_jobs: Sequence[AgentJob], holdings: Mapping[str, str]) -> int:
    """Agent Jobs still running whose agent holds no job: each will take a waiting one."""
    return sum(1 for job in agent_jobs if job.phase is Phase.ACTIVE and job.name not in holdings)


def plan_creations(
    pending: Sequence[PendingJob],
    agent_jobs: Sequence[AgentJob],
    holdings: Mapping[str, str],
    limit: int = MAX_CREATES_PER_PASS,
) -> list[PendingJob]:
    """The pending jobs (oldest first) to create an agent Job for now."""
    wanted = min(len(pending) - idle_agents(agent_jobs, holdings), limit)
    if wanted <= 0:
        return []
    taken = {job.name for job in agent_jobs}
    free = [p for p in sorted(pending) if agent_job_name(p.job_id, p.attempt) not in taken]
    return free[:wanted]


class AgentJobCreator:
    """Creates the agent Jobs `plan_creations` asks for, each with its claim-token Secret."""

    def __init__(self, api: ClusterApi, template: AgentJobTemplate, claim_key: bytes) -> None:
        self._api = api
        self._template = template
        self._claim_key = claim_key
        self._secured: set[str] = set()  # uids of the Jobs whose Secret exists

    async def create(
        self,
        pending: Sequence[PendingJob],
        agent_jobs: Sequence[AgentJob],
        holdings: Mapping[str, str],
    ) -> list[str]:
        """Create the agent Jobs needed now; return the names this call created.

        Raises:
            ServiceUnavailableError: the Kubernetes API refused or did not answer.
        """
        await self._secure(agent_jobs)
        created = []
        for job in plan_creations(pending, agent_jobs, holdings):
            body = agent_job(self._template, job.job_id, job.attempt)
            name = body["metadata"]["name"]
            uid = await self._api.create_job(body)
            if uid is None:
                _log.debug("agent Job exists already", agent_job=name, job_id=job.job_id)
                continue
            created.append(name)
            _log.info("agent Job created", agent_job=name, job_id=job.job_id, attempt=job.attempt)
            await self._create_secret(job.job_id, job.attempt, uid)
        return created

    async def _secure(self, agent_jobs: Sequence[AgentJob]) -> None:
        """Give each running agent Job this process has not secured yet its Secret."""
        for job in agent_jobs:
            if job.phase is not Phase.ACTIVE or job.uid in self._secured:
                continue
            if job.job_id and job.attempt is not None:
                await self._create_secret(job.job_id, job.attempt, job.uid)
        self._secured &= {job.uid for job in agent_jobs}

    async def _create_secret(self, job_id: str, attempt: int, owner_uid: str) -> None:
        token = mint_claim_token(self._claim_key, job_id, attempt)
        secret = claim_token_secret(
            self._template, job_id, attempt, token=token, owner_uid=owner_uid
        )
        await self._api.create_secret(secret)
        self._secured.add(owner_uid)
