"""``/webhook/{forge}/explain``: what the intake would decide for a delivery, and why.

The same verification, parsing and rules as a real delivery, then read-only lookups of the
delivery key, the content key and the jobs a new job would supersede. Nothing is written: no
job, no journal entry, no rate-limit count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from raibid_api.domain.jobs import JobId, JobStatus
from raibid_api.errors import JobNotFoundError, RaibidError
from raibid_api.webhooks.events import Ignored, WebhookEvent
from raibid_api.webhooks.headers import Headers
from raibid_api.webhooks.intake import Delivery, read_delivery
from raibid_api.webhooks.journal import Decision
from raibid_api.webhooks.outcome import (
    adapter_for,
    content_fingerprint,
    decision_of,
    job_fields,
    synthetic_delivery_id,
)
from raibid_api.webhooks.service import WebhookIntake

_ACTIVE = frozenset({JobStatus.PENDING.value, JobStatus.RUNNING.value})


@dataclass(slots=True, kw_only=True)
class Explanation:
    """The intake's verdict on a delivery, as ``explain`` answers it.

    Attributes:
        decision: what the intake would do.
        reason: the error code, ``ignored`` reason, or kind of duplicate.
        detail: a human explanation.
        forge: the route.
        event: the event type header.
        delivery_id: the delivery id (or the synthetic one a delivery without one gets).
        signature: the verdict on its credentials, when they were checked.
        repo: its repository, once authenticated.
        job: the fields of the job it would create (``created``).
        duplicate_of: the job it would return (``duplicate``).
        supersedes: the jobs auto-cancel would cancel (``created``).
    """

    decision: Decision
    reason: str | None = None
    detail: str | None = None
    forge: str
    event: str | None = None
    delivery_id: str | None = None
    signature: str | None = None
    repo: str | None = None
    job: dict[str, object] | None = None
    duplicate_of: str | None = None
    supersedes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The answer's body."""
        return asdict(self)


async def explain_delivery(
    intake: WebhookIntake, forge: str, headers: Headers, body: bytes
) -> Explanation:
    """What ``intake`` would decide for this delivery to ``/webhook/<forge>``.

    Raises:
        NotFoundError: an unknown forge.
        ServiceUnavailableError: Redis does not answer the lookups.
    """
    adapter = adapter_for(forge)
    try:
        delivery = read_delivery(adapter, headers, body, intake.settings)
    except RaibidError as exc:
        return Explanation(
            decision=Decision.REJECTED,
            reason=exc.code,
            detail=exc.message,
            forge=forge,
            event=adapter.event_type(headers),
            signature="mismatch" if exc.code == "signature_mismatch" else None,
        )
    explanation = Explanation(
        decision=Decision.CREATED,
        forge=forge,
        event=delivery.event_type,
        delivery_id=delivery.delivery_id or synthetic_delivery_id(body),
        signature=delivery.signature.value,
        repo=delivery.repo,
    )
    if isinstance(delivery.outcome, Ignored):
        explanation.decision = decision_of(delivery.outcome)
        explanation.reason = delivery.outcome.reason.value
        explanation.detail = delivery.outcome.detail
        return explanation
    await _explain_event(intake, delivery, delivery.outcome, explanation)
    return explanation


async def _explain_event(
    intake: WebhookIntake,
    delivery: Delivery,
    event: WebhookEvent,
    explanation: Explanation,
) -> None:
    assert explanation.delivery_id is not None  # noqa: S101  (set by the caller)
    known = await intake.lookup.delivery_owner(delivery.forge, explanation.delivery_id)
    if known is not None:
        explanation.decision = Decision.DUPLICATE
        explanation.reason = "delivery"
        explanation.detail = "this delivery id made a job already"
        explanation.duplicate_of = known
        return
    active = await _active_job(
        intake, await intake.lookup.content_owner(content_fingerprint(event))
    )
    if active is not None:
        explanation.decision = Decision.DUPLICATE
        explanation.reason = "content"
        explanation.detail = "a job building the same commit of the same ref is still active"
        explanation.duplicate_of = active
        return
    job = intake.jobs.new_job(**job_fields(event, delivery.forge, explanation.delivery_id))
    explanation.detail = f"a new {event.kind} job"
    explanation.job = {k: v for k, v in job.items() if v is not None and k != "id"}
    explanation.supersedes = await intake.auto_cancel.superseded(event)


async def _active_job(intake: WebhookIntake, job_id: str | None) -> str | None:
    if job_id is None:
        return None
    try:
        job = await intake.jobs.get(JobId(job_id))
    except JobNotFoundError:
        return None
    return job_id if job["status"] in _ACTIVE else None
