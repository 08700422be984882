"""What one delivery becomes: the job fields of its event, its identities, the intake's result.

The identities make the intake idempotent: the delivery id (or, for a delivery without one, a
digest of its body) names the delivery key, and what is built (repo, event, ref, commit) names the
content key (`raibid_api.domain.jobs.content_fingerprint`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from raibid_api.domain.jobs import Job
from raibid_api.errors import NotFoundError
from raibid_api.webhooks.events import Ignored, IgnoreReason, WebhookEvent
from raibid_api.webhooks.journal import Decision
from raibid_api.webhooks.registry import ADAPTERS, WebhookAdapter

SYNTHETIC_ID_PREFIX = "body-"

Outcome = Literal["created", "duplicate", "ignored", "spooled"]


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What became of one accepted delivery.

    Attributes:
        outcome: a new job, a duplicate of a known one, nothing to build, or spooled.
        delivery_id: the forge's delivery id, or the synthetic one (see `synthetic_delivery_id`).
        job: the job made or found (with its links), for ``created`` and ``duplicate``.
        duplicate: ``delivery`` (a redelivery) or ``content`` (the same build, still active).
        ignored: why nothing is built, for ``ignored``.
        repo: ``owner/name`` of the delivery's repository, when it names one.
    """

    outcome: Outcome
    delivery_id: str
    job: Job | None = None
    duplicate: Literal["delivery", "content"] | None = None
    ignored: Ignored | None = None
    repo: str | None = None


def adapter_for(forge: str) -> WebhookAdapter:
    """The adapter serving ``/webhook/<forge>``.

    Raises:
        NotFoundError: no such forge.
    """
    adapter = ADAPTERS.get(forge)
    if adapter is None:
        known = ", ".join(sorted(ADAPTERS))
        raise NotFoundError(f"no webhook route for this forge; use one of {known}")
    return adapter


def synthetic_delivery_id(body: bytes) -> str:
    """The delivery id of a delivery without one: a digest of its body, so a resend dedups."""
    return SYNTHETIC_ID_PREFIX + hashlib.sha256(body).hexdigest()[:40]


def job_fields(event: WebhookEvent, forge: str, delivery_id: str) -> dict[str, object]:
    """The Job JSON fields a webhook event fills in."""
    return {
        "repo": event.repo,
        "clone_url": event.clone_url,
        "ref": event.ref,
        "branch": event.branch,
        "tag": event.tag,
        "commit": event.commit,
        "event": event.kind,
        "forge": forge,
        "delivery_id": delivery_id,
        "pull_request": event.pull_request,
        "author": event.author,
        "pusher": event.pusher,
        "message": event.message,
    }


_FILTER_REASONS = frozenset(
    {
        IgnoreReason.EVENT_EXCLUDED,
        IgnoreReason.BRANCH_EXCLUDED,
        IgnoreReason.NO_MATCHING_PATHS,
        IgnoreReason.SKIP_CI,
    }
)


def decision_of(ignored: Ignored) -> Decision:
    """``filtered`` when configuration or ``[skip ci]`` ruled it out, else ``ignored``."""
    return Decision.FILTERED if ignored.reason in _FILTER_REASONS else Decision.IGNORED
