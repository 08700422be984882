"""Creation of agent Jobs: one per pending CI job that no idle agent Job is there to take.

An agent claims whichever job the queue hands it, not the one its Job is named after, so the
rule counts: while more jobs wait than agent Jobs are up and not holding a job, create Jobs for the
oldest waiting jobs that have none yet. Names are deterministic (`agent_job_name`), so replicas
that decide the same at once create each Job once; the others get ``AlreadyExists``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from raibid_api.dispatch.cluster import ClusterApi
from raibid_api.dispatch.manifests import AgentJobTemplate, agent_job, agent_job_name
from raibid_api.dispatch.observed import AgentJob, Phase
from raibid_api.dispatch.sources import PendingJob

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
    """Creates the agent Jobs `plan_creations` asks for."""

    def __init__(self, api: ClusterApi, template: AgentJobTemplate) -> None:
        self._api = api
        self._template = template

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
        created = []
        for job in plan_creations(pending, agent_jobs, holdings):
            body = agent_job(self._template, job.job_id, job.attempt)
            name = body["metadata"]["name"]
            if await self._api.create_job(body):
                created.append(name)
                _log.info("agent Job created", agent_job=name, job_id=job.job_id,
                          attempt=job.attempt)  # fmt: skip
            else:
                _log.debug("agent Job exists already", agent_job=name, job_id=job.job_id)
        return created
