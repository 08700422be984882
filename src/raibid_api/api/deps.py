"""What routes depend on, as `Annotated` aliases; the objects live in the app's `AppState`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from raibid_api.api.auth import Principal, TokenRegistry
from raibid_api.config import Settings
from raibid_api.dispatch.dispatcher import KubernetesDispatcher
from raibid_api.dispatch.identity import TokenReviewer
from raibid_api.dispatch.identity import looks_like_service_account_token as is_pod_token
from raibid_api.domain.jobs import Clock
from raibid_api.errors import AuthenticationError, JobTokenError
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
        token_reviewer: reviews agent pods' ServiceAccount tokens (``dispatch.mode: keda`` only).
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
    token_reviewer: TokenReviewer | None = None


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


API_TOKEN = HTTPBearer(
    auto_error=False,
    scheme_name="apiToken",
    description="A configured API token (`auth.tokens`); its scopes (read, write, agent) decide "
    "which operations it may call. Reads need none when `auth.anonymous_read` is on.",
)
JOB_TOKEN = HTTPBearer(
    auto_error=False,
    scheme_name="jobToken",
    description="The token a claim answers with: good for that job's current attempt only.",
)
API_TOKEN_SECURITY: list[dict[str, list[str]]] = [{API_TOKEN.scheme_name: []}]
"""The OpenAPI ``security`` of an operation that checks the API token itself (a `DirectRoute`)."""

Credentials = HTTPAuthorizationCredentials | None


async def job_token(credentials: Annotated[Credentials, Security(JOB_TOKEN)]) -> str:
    """The job token an agent's job call carries as its bearer credential.

    Raises:
        JobTokenError: no bearer token.
    """
    if credentials is None or not credentials.credentials.strip():
        raise JobTokenError("job calls need Authorization: Bearer <job token>")
    return credentials.credentials.strip()


def _scope_dependency(scope: str) -> Any:
    # the API_TOKEN dependency declares the scheme in OpenAPI; the registry reads the header
    # itself, as DirectRoutes do
    async def check(request: Request, _: Annotated[Credentials, Security(API_TOKEN)]) -> Principal:
        return state_of(request).tokens.authorize(request.headers.get("authorization"), scope)

    check.__name__ = f"require_{scope}"
    return Depends(check)


async def claim_principal(request: Request) -> Principal:
    """Who claims: an ``agent`` token, a claim token, or an agent pod's ServiceAccount token.

    A claim token comes with ``dispatch.mode: kubernetes``; a ServiceAccount token with
    ``dispatch.mode: keda``, reviewed by the Kubernetes TokenReview API.

    Raises:
        AuthenticationError: no token, an unknown one, or one Kubernetes does not vouch for.
        PermissionDeniedError: a known token without the ``agent`` scope.
        ServiceUnavailableError: the Kubernetes API did not answer the review.
    """
    state = state_of(request)
    header = request.headers.get("authorization")
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    reviewer = state.token_reviewer
    if reviewer is not None and scheme.lower() == "bearer" and is_pod_token(token):
        identity = await reviewer.review(token)
        if identity is None:
            raise AuthenticationError("unknown token")
        return Principal(f"agent pod {identity.pod_name}", frozenset(), pod=identity)
    return state.tokens.authorize_claim(header)


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
ClaimPrincipal = Annotated[Principal, Depends(claim_principal)]
