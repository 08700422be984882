"""What routes depend on, as `Annotated` aliases; the objects live in the app's `AppState`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from raibid_api.agent.local import LocalAgentProcess
from raibid_api.api.auth import Principal, TokenRegistry
from raibid_api.config import Settings
from raibid_api.dispatch.dispatcher import KubernetesDispatcher
from raibid_api.domain.jobs import Clock
from raibid_api.errors import JobTokenError
from raibid_api.forges.reporting import StatusReporting
from raibid_api.jobs.agents import AgentService
from raibid_api.jobs.reaper import Reaper
from raibid_api.jobs.service import JobService
from raibid_api.logs.follow import LogFollower
from raibid_api.observability.health import HealthChecks
from raibid_api.storage.event_store import EventStore
from raibid_api.storage.job_store import JobStore
from raibid_api.webhooks.replay import SpoolReplayer
from raibid_api.webhooks.service import WebhookIntake


@dataclass
class AppState:
    """Everything the lifespan builds, handed to routes through the dependencies below.

    Attributes:
        settings: the configuration the app was made with.
        tokens: the bearer tokens and their scopes.
        jobs: the job service.
        health: the readiness checks.
        agents: the agent protocol's service.
        events: the job event streams (logs and status changes).
        live_logs: the live log streams over SSE, and the process's shared reader.
        store: the job records.
        clock: where the time comes from.
        reaper: requeues lost agents' jobs and times out overlong ones.
        intake: the webhook intake.
        replayer: empties the webhook spool once Redis is back (None: no spool).
        status_reporting: commit statuses back to the forges (None: no forge configured).
        dispatcher: the Kubernetes dispatcher (``dispatch.mode: kubernetes`` only).
        local_agent: the built-in agent's child process (``dispatch.mode: local`` only).
    """

    settings: Settings
    tokens: TokenRegistry
    jobs: JobService
    health: HealthChecks
    agents: AgentService
    events: EventStore
    live_logs: LogFollower
    store: JobStore
    clock: Clock
    reaper: Reaper
    intake: WebhookIntake
    replayer: SpoolReplayer | None = None
    status_reporting: StatusReporting | None = None
    dispatcher: KubernetesDispatcher | None = None
    local_agent: LocalAgentProcess | None = None


def state_of(request: Request) -> AppState:
    """The state of the application serving ``request``."""
    state: AppState = request.app.state.raibid
    return state


# Dependencies are coroutines: FastAPI runs a plain `def` dependency in a thread pool, a hop
# that cost more than the whole request it served.


async def app_state(request: Request) -> AppState:
    """The state of the application serving ``request``."""
    return state_of(request)


async def job_service(request: Request) -> JobService:
    """The job service."""
    return state_of(request).jobs


async def agent_service(request: Request) -> AgentService:
    """The agent service."""
    return state_of(request).agents


async def event_store(request: Request) -> EventStore:
    """The job event streams."""
    return state_of(request).events


async def live_logs(request: Request) -> LogFollower:
    """The live log streams."""
    return state_of(request).live_logs


async def webhook_intake(request: Request) -> WebhookIntake:
    """The webhook intake."""
    return state_of(request).intake


async def job_token(request: Request) -> str:
    """The job token an agent's job call carries as its bearer credential.

    Raises:
        JobTokenError: no bearer token.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise JobTokenError("job calls need Authorization: Bearer <job token>")
    return token.strip()


def _scope_dependency(scope: str) -> Any:
    async def check(request: Request) -> Principal:
        return state_of(request).tokens.authorize(request.headers.get("authorization"), scope)

    check.__name__ = f"require_{scope}"
    return Depends(check)


StateDep = Annotated[AppState, Depends(app_state)]
JobServiceDep = Annotated[JobService, Depends(job_service)]
AgentServiceDep = Annotated[AgentService, Depends(agent_service)]
EventStoreDep = Annotated[EventStore, Depends(event_store)]
LiveLogsDep = Annotated[LogFollower, Depends(live_logs)]
WebhookIntakeDep = Annotated[WebhookIntake, Depends(webhook_intake)]
JobToken = Annotated[str, Depends(job_token)]
ReadPrincipal = Annotated[Principal, _scope_dependency("read")]
WritePrincipal = Annotated[Principal, _scope_dependency("write")]
AgentPrincipal = Annotated[Principal, _scope_dependency("agent")]
