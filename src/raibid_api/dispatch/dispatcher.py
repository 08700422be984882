"""``dispatch.mode: kubernetes``: the loop that keeps one agent Job per waiting CI job.

Each pass reads the queue (Redis) and the agent Jobs (Kubernetes), reports failures, deletes
finished Jobs that are in the way or past their TTL and running ones of cancelled jobs, then
creates the Jobs still missing. Every
replica runs it; deterministic Job names keep them from creating a Job twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from raibid_api.config import Settings
from raibid_api.dispatch.cluster import ClusterApi, LightkubeClusterApi
from raibid_api.dispatch.creator import AgentJobCreator
from raibid_api.dispatch.manifests import AGENT_SELECTOR, AgentJobTemplate
from raibid_api.dispatch.observed import read_agent_job
from raibid_api.dispatch.sources import JobSource, ServiceJobSource
from raibid_api.dispatch.watcher import AgentJobWatcher, DeletionRules, running_job_ids
from raibid_api.domain.jobs import Clock
from raibid_api.errors import ServiceUnavailableError
from raibid_api.jobs.service import JobService

_log = structlog.get_logger("raibid_api.dispatch")
POLL_INTERVAL = 3.0  # seconds between passes: the longest a new job waits for its Job


@dataclass(frozen=True)
class PassResult:
    """What one pass changed in the cluster."""

    created: list[str]
    deleted: list[str]


class KubernetesDispatcher:
    """Creates, follows and cleans up agent Jobs for the CI jobs in the queue."""

    def __init__(
        self, api: ClusterApi, source: JobSource, template: AgentJobTemplate, clock: Clock,
        claim_key: bytes, *, interval: float = POLL_INTERVAL,
    ) -> None:  # fmt: skip
        self._api = api
        self._source = source
        self._clock = clock
        self._interval = interval
        self._creator = AgentJobCreator(api, template, claim_key)
        self._watcher = AgentJobWatcher(api, DeletionRules(ttl_ms=template.ttl_seconds * 1000))

    async def dispatch_once(self) -> PassResult:
        """One pass: report, clean up, create.

        Raises:
            ServiceUnavailableError: Redis or the Kubernetes API did not answer.
        """
        pending = await self._source.pending_jobs()
        holdings = await self._source.holdings()
        agent_jobs = [read_agent_job(job) for job in await self._api.list_jobs(AGENT_SELECTOR)]
        pods = []
        if self._watcher.needs_pods(agent_jobs):
            pods = await self._api.list_pods(AGENT_SELECTOR)
        self._watcher.report(agent_jobs, pods, holdings)
        cancelled = await self._source.cancelled(running_job_ids(agent_jobs))
        deleted = await self._watcher.clean_up(agent_jobs, pending, self._clock.now_ms(), cancelled)
        # Jobs deleted just now still count as taken names: they are created on the next pass.
        created = await self._creator.create(pending, agent_jobs, holdings)
        return PassResult(created, deleted)

    async def run(self) -> None:
        """Pass every ``interval`` seconds until cancelled, then close the API client."""
        try:
            while True:
                await self._pass_safely()
                await asyncio.sleep(self._interval)
        finally:
            await self._api.close()

    async def _pass_safely(self) -> None:
        try:
            await self.dispatch_once()
        except ServiceUnavailableError as exc:
            _log.warning("dispatch pass skipped", reason=exc.message)
        except Exception:  # a bug must not stop dispatching for the life of the process
            _log.exception("dispatch pass failed")

    async def ping(self) -> None:
        """The readiness check: the Kubernetes API answers.

        Raises:
            ServiceUnavailableError: it does not.
        """
        await self._api.ping()


def create_dispatcher(
    settings: Settings, jobs: JobService, clock: Clock, claim_key: bytes,
    api: ClusterApi | None = None,
) -> KubernetesDispatcher:  # fmt: skip
    """The dispatcher ``settings`` describe, on the cluster's API (in-cluster or $KUBECONFIG).

    ``claim_key`` signs the claim tokens of its agent Jobs (`raibid_api.jobs.claim_tokens`).

    Raises:
        ConfigError: no Kubernetes credentials were found.
    """
    template = AgentJobTemplate.from_settings(settings)
    cluster = api or LightkubeClusterApi.connect(template.namespace)
    return KubernetesDispatcher(cluster, ServiceJobSource(jobs), template, clock, claim_key)
