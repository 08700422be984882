"""Agent pods' identities in ``dispatch.mode: keda``: projected ServiceAccount tokens, reviewed.

A KEDA agent pod holds no raibid-api token: it claims with its own projected ServiceAccount
token (audience ``dispatch.keda.audience``, short-lived, bound to the pod). The server asks the
Kubernetes TokenReview API whether the token is genuine, for that audience, of the agents'
ServiceAccount, and which pod it is bound to (the ``pod-uid`` extra); the claim then lets one pod
uid claim at most one job (`raibid_api.jobs.agents.AgentService.claim_as_pod`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ConfigError as KubeConfigError
from lightkube.models.authentication_v1 import TokenReviewSpec
from lightkube.resources.authentication_v1 import TokenReview

from raibid_api.config import Settings
from raibid_api.dispatch.cluster import FIELD_MANAGER, calling
from raibid_api.errors import ConfigError

POD_UID = "authentication.kubernetes.io/pod-uid"
POD_NAME = "authentication.kubernetes.io/pod-name"
_JWT_PARTS = 3


@dataclass(frozen=True)
class PodIdentity:
    """The pod a reviewed token is bound to."""

    pod_uid: str
    pod_name: str
    username: str


def looks_like_service_account_token(token: str) -> bool:
    """Whether ``token`` has a JWT's shape (what a projected ServiceAccount token is)."""
    return token.startswith("eyJ") and token.count(".") == _JWT_PARTS - 1


class TokenReviewer(Protocol):
    """Reviews ServiceAccount tokens; raises `ServiceUnavailableError` when it cannot."""

    async def review(self, token: str) -> PodIdentity | None:
        """The pod ``token`` is bound to, if it is an agent pod's token for our audience."""
        ...

    async def close(self) -> None:
        """Release the connections."""
        ...


def _first(extra: dict[str, Any], key: str) -> str:
    values = extra.get(key) or []
    return str(values[0]) if values else ""


def identity_of(status: dict[str, Any], audience: str, username: str) -> PodIdentity | None:
    """The pod a TokenReview's ``status`` vouches for, or None when it vouches for none of ours."""
    user = status.get("user") or {}
    extra = user.get("extra") or {}
    if status.get("authenticated") is not True or audience not in (status.get("audiences") or []):
        return None
    if user.get("username") != username or not _first(extra, POD_UID):
        return None
    return PodIdentity(_first(extra, POD_UID), _first(extra, POD_NAME), username)


class LightkubeTokenReviewer:
    """`TokenReviewer` over lightkube's `AsyncClient` (cluster-scoped ``create tokenreviews``)."""

    def __init__(self, client: AsyncClient, audience: str, username: str) -> None:
        self._client = client
        self._audience = audience
        self._username = username

    @classmethod
    def connect(
        cls, settings: Settings, config: KubeConfig | None = None
    ) -> LightkubeTokenReviewer:
        """The reviewer ``dispatch.keda`` describes, on the in-cluster API or ``$KUBECONFIG``.

        Raises:
            ConfigError: no in-cluster service account and no kubeconfig file.
        """
        keda = settings.dispatch.keda
        try:
            client = AsyncClient(config or KubeConfig.from_env(), field_manager=FIELD_MANAGER)
        except KubeConfigError as exc:
            raise ConfigError(
                "dispatch.mode keda needs Kubernetes credentials to review agent pods' tokens",
                [f"dispatch.mode: no service account token and no kubeconfig ({exc})"],
            ) from None
        username = f"system:serviceaccount:{keda.namespace}:{keda.service_account}"
        return cls(client, keda.audience, username)

    async def review(self, token: str) -> PodIdentity | None:
        """The pod ``token`` is bound to, if it is an agent pod's token for our audience.

        Raises:
            ServiceUnavailableError: the API refused or did not answer.
        """
        review = TokenReview(spec=TokenReviewSpec(token=token, audiences=[self._audience]))
        with calling("review an agent pod's token"):
            answer = await self._client.create(review)
        status = answer.to_dict().get("status") or {}
        return identity_of(status, self._audience, self._username)

    async def close(self) -> None:
        """Release the connections."""
        await self._client.close()
