"""What routes depend on, as `Annotated` aliases; the objects live in the app's `AppState`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from raibid_api.api.auth import Principal, TokenRegistry
from raibid_api.config import Settings
from raibid_api.jobs.agents import AgentService
from raibid_api.jobs.service import JobService
from raibid_api.logs.follow import LogFollower
from raibid_api.observability.health import HealthChecks
from raibid_api.storage.event_store import EventStore


@dataclass
class AppState:
    """Everything the lifespan builds, handed to routes through the dependencies below."""

    settings: Settings
    tokens: TokenRegistry
    jobs: JobService
    health: HealthChecks
    agents: AgentService
    events: EventStore
    live_logs: LogFollower
    extras: dict[str, Any] = field(default_factory=dict)


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


def _scope_dependency(scope: str) -> Any:
    async def check(request: Request) -> Principal:
        return state_of(request).tokens.authorize(request.headers.get("authorization"), scope)

    check.__name__ = f"require_{scope}"
    return Depends(check)


StateDep = Annotated[AppState, Depends(app_state)]
JobServiceDep = Annotated[JobService, Depends(job_service)]
ReadPrincipal = Annotated[Principal, _scope_dependency("read")]
WritePrincipal = Annotated[Principal, _scope_dependency("write")]
AgentPrincipal = Annotated[Principal, _scope_dependency("agent")]
