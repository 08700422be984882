"""`raibid-api dispatch render`: what the dispatcher would create for a job, created nowhere.

The dispatcher's own `AgentJobCreator` runs against `RecordingClusterApi`, a `ClusterApi` that
keeps what it is asked to create and answers as an empty cluster would. The claim token is
signed with a throw-away key and shown as `REDACTED_CLAIM`; the Secret's owner is the uid the
API server would give the Job (`UID_PLACEHOLDER`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from raibid_api.dispatch.creator import AgentJobCreator
from raibid_api.dispatch.manifests import TOKEN_KEY, AgentJobTemplate
from raibid_api.dispatch.sources import PendingJob

# A job id for the example render: any UUID renders the same objects but for its name and labels.
EXAMPLE_JOB_ID = "3f2a9c1e-7b4d-4c55-8e0f-0123456789ab"
UID_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
REDACTED_CLAIM = "<claim token, minted by the dispatcher when it creates the Job>"


class RecordingClusterApi:
    """A `ClusterApi` with nothing in it that records creations and performs none."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    async def create_job(self, body: Mapping[str, Any]) -> str | None:
        """Record the Job; the uid the API server would give it."""
        self.created.append(dict(body))
        return UID_PLACEHOLDER

    async def create_secret(self, body: Mapping[str, Any]) -> bool:
        """Record the Secret."""
        self.created.append(dict(body))
        return True

    async def list_jobs(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """No Jobs."""
        return []

    async def list_pods(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """No pods."""
        return []

    async def delete_job(self, name: str) -> None:
        """Nothing to delete."""

    async def ping(self) -> None:
        """Always answers."""

    async def close(self) -> None:
        """Nothing to release."""


def _without_token(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") == "Secret":
        return obj | {"stringData": {TOKEN_KEY: REDACTED_CLAIM}}
    return obj


async def render_agent_objects(
    template: AgentJobTemplate, job_id: str, attempt: int
) -> list[dict[str, Any]]:
    """What one dispatcher pass creates for ``job_id``'s attempt ``attempt`` in an empty cluster.

    Raises:
        InvalidJobIdError: ``job_id`` is not a UUID.
    """
    api = RecordingClusterApi()
    creator = AgentJobCreator(api, template, secrets.token_bytes(32))
    await creator.create([PendingJob("", job_id, attempt)], [], {})
    return [_without_token(obj) for obj in api.created]
