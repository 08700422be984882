"""The Kubernetes API as the dispatcher uses it: a small Protocol and its lightkube client.

Every failure to talk to the API (unreachable, refused, unexpected answer) becomes a
`ServiceUnavailableError`; the two answers that are normal under several replicas are not errors:
creating a Job that exists (409 ``AlreadyExists``) and deleting one that is gone (404).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, cast

import httpx2
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.core.exceptions import ConfigError as KubeConfigError
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod, Secret
from lightkube.types import CascadeType

from raibid_api.errors import ConfigError, ServiceUnavailableError

LIST_CHUNK = 250  # objects per list call; lightkube follows `continue` until the end
FIELD_MANAGER = "raibid-api"


class ClusterApi(Protocol):
    """The calls the dispatcher makes, in the namespace it was built for.

    Each raises `ServiceUnavailableError` when the API cannot be reached or refuses the call.
    """

    async def create_job(self, body: Mapping[str, Any]) -> str | None:
        """Create the Job ``body``; its uid, or None when a Job of that name already exists."""
        ...

    async def create_secret(self, body: Mapping[str, Any]) -> bool:
        """Create the Secret ``body``; False when a Secret of that name already exists."""
        ...

    async def list_jobs(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every Job carrying ``labels``."""
        ...

    async def list_pods(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every pod carrying ``labels``."""
        ...

    async def delete_job(self, name: str) -> None:
        """Delete a Job and, in the background, its pods; a Job already gone is fine."""
        ...

    async def ping(self) -> None:
        """Answer only when the API answers a list of Jobs (reachable and permitted)."""
        ...

    async def close(self) -> None:
        """Release the connections."""
        ...


def _unavailable(action: str, exc: Exception) -> ServiceUnavailableError:
    if isinstance(exc, ApiError):
        status = exc.status
        detail = f"{status.code} {status.reason}: {status.message}"
        return ServiceUnavailableError(f"the Kubernetes API refused to {action}: {detail}")
    return ServiceUnavailableError(
        f"the Kubernetes API did not answer a request to {action}: {type(exc).__name__}"
    )


@contextlib.contextmanager
def calling(action: str) -> Iterator[None]:
    """Turn every failure to talk to the API during the block into `ServiceUnavailableError`."""
    try:
        yield
    except (httpx2.HTTPError, KubeConfigError) as exc:
        # ApiError is an httpx2.HTTPStatusError; a rotated token file may vanish (KubeConfigError)
        raise _unavailable(action, exc) from exc


def _is(exc: ApiError, code: int) -> bool:
    return exc.status.code == code


class LightkubeClusterApi:
    """`ClusterApi` over lightkube's `AsyncClient`, in one namespace."""

    def __init__(self, client: AsyncClient, namespace: str) -> None:
        self._client = client
        self._namespace = namespace

    @classmethod
    def connect(cls, namespace: str, config: KubeConfig | None = None) -> LightkubeClusterApi:
        """A client of the cluster this process runs in, or of ``$KUBECONFIG`` outside one.

        Raises:
            ConfigError: no in-cluster service account and no kubeconfig file.
        """
        try:
            found = config or KubeConfig.from_env()
            client = AsyncClient(found, namespace=namespace, field_manager=FIELD_MANAGER)
        except KubeConfigError as exc:
            raise ConfigError(
                "dispatch.mode kubernetes needs Kubernetes credentials",
                [f"dispatch.mode: no service account token and no kubeconfig ({exc})"],
            ) from None
        return cls(client, namespace)

    async def create_job(self, body: Mapping[str, Any]) -> str | None:
        """Create the Job ``body``; its uid, or None when a Job of that name already exists."""
        job = cast(Job, Job.from_dict(dict(body)))
        with calling("create an agent Job"):
            try:
                created = await self._client.create(job)
            except ApiError as exc:
                if _is(exc, 409):
                    return None
                raise
        return str(created.metadata.uid) if created.metadata else ""

    async def create_secret(self, body: Mapping[str, Any]) -> bool:
        """Create the Secret ``body``; False when a Secret of that name already exists."""
        secret = cast(Secret, Secret.from_dict(dict(body)))
        with calling("create an agent Job's Secret"):
            try:
                await self._client.create(secret)
            except ApiError as exc:
                if _is(exc, 409):
                    return False
                raise
        return True

    async def list_jobs(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every Job carrying ``labels``."""
        with calling("list agent Jobs"):
            listing = self._client.list(
                Job, namespace=self._namespace, labels=dict(labels), chunk_size=LIST_CHUNK
            )
            return [job.to_dict() async for job in listing]

    async def list_pods(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every pod carrying ``labels``."""
        with calling("list agent pods"):
            listing = self._client.list(
                Pod, namespace=self._namespace, labels=dict(labels), chunk_size=LIST_CHUNK
            )
            return [pod.to_dict() async for pod in listing]

    async def delete_job(self, name: str) -> None:
        """Delete a Job and, in the background, its pods; a Job already gone is fine."""
        with calling(f"delete agent Job {name}"):
            try:
                # the API's default for Jobs orphans their pods; background deletes them too
                await self._client.delete(
                    Job, name, namespace=self._namespace, cascade=CascadeType.BACKGROUND
                )
            except ApiError as exc:
                if not _is(exc, 404):
                    raise

    async def ping(self) -> None:
        """Answer only when the API answers a list of Jobs (reachable and permitted)."""
        with calling("list Jobs"):
            listing = self._client.list(Job, namespace=self._namespace, chunk_size=1)
            async for _ in listing:
                break

    async def close(self) -> None:
        """Release the connections."""
        await self._client.close()
