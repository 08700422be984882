"""``/webhook/{forge}/explain``: what the intake would decide for a delivery, and why.

The same verification, parsing and rules as a real delivery, then a dry run of the same create
step (`job_create.lua` with ``dry_run``): the script takes the decision a real delivery would
get, on the same reads, and writes nothing. No job, no journal entry, no rate-limit count; the
repository's rate limit is checked (the forge's source address is not known here).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from raibid_api.domain.jobs import JobStatus
from raibid_api.errors import RaibidError, RateLimitedError
from raibid_api.webhooks.events import Ignored, WebhookEvent
from raibid_api.webhooks.headers import Headers
from raibid_api.webhooks.intake import Delivery, read_delivery
from raibid_api.webhooks.journal import Decision
from raibid_api.webhooks.outcome import adapter_for, decision_of, synthetic_delivery_id
from raibid_api.webhooks.service import WebhookIntake
from raibid_api.webhooks.supersede import SUPERSEDED

_DUPLICATE_DETAILS = {
    "delivery": "this delivery id made a job already",
    "content": "a job building the same commit of the same ref is still active",
}


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
        supersedes: the job auto-cancel would cancel (``created``).
        supersede_cancel: who would cancel it: ``create_step``, in the step that stores the new
            job (a pending job), or ``after_create``, the intake right after it (a running job,
            with ``auto_cancel_running``).
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
    supersede_cancel: Literal["create_step", "after_create"] | None = None

    def to_json(self) -> dict[str, object]:
        """The answer's body."""
        return asdict(self)


async def explain_delivery(
    intake: WebhookIntake, forge: str, headers: Headers, body: bytes
) -> Explanation:
    """What ``intake`` would decide for this delivery to ``/webhook/<forge>``.

    Raises:
        NotFoundError: an unknown forge.
        ServiceUnavailableError: Redis does not answer the dry run.
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
    try:
        job, outcome = await intake.preview(delivery.forge, explanation.delivery_id, event)
    except RateLimitedError as exc:
        explanation.decision = Decision.REJECTED
        explanation.reason = exc.code
        explanation.detail = exc.message
        return
    if outcome.duplicate is not None:
        explanation.decision = Decision.DUPLICATE
        explanation.reason = outcome.duplicate
        explanation.detail = _DUPLICATE_DETAILS[outcome.duplicate]
        explanation.duplicate_of = outcome.job_id
        return
    explanation.detail = f"a new {event.kind} job"
    explanation.job = {k: v for k, v in job.items() if v is not None and k != "id"}
    superseded = outcome.superseded
    if superseded is None:
        return
    if superseded.job_id == outcome.job_id:
        explanation.detail += ", cancelled at once: its line has a newer job already"
        explanation.job |= {"status": JobStatus.CANCELLED.value, "reason": SUPERSEDED}
        return
    explanation.supersedes = [superseded.job_id]
    explanation.supersede_cancel = "create_step" if superseded.cancelled_here else "after_create"
