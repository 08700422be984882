"""The webhook intake over HTTP: forge deliveries in, the delivery journal and ``explain``.

Thin: each route reads the request, hands it to `WebhookIntake`, and renders what comes back.
The paths are declared below the webhook prefix, which `raibid_api.api.routing` adds with its
aliases (``/webhook/{forge}``, ``/webhooks/{forge}``, ...).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

import orjson
from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.responses import Response

from raibid_api.api.deps import ReadPrincipal, WebhookIntakeDep, WritePrincipal, state_of
from raibid_api.api.routing import DirectRoute
from raibid_api.api.schemas import ErrorOut, JobId
from raibid_api.domain.jobs import REPO_PATTERN
from raibid_api.errors import PayloadTooLargeError
from raibid_api.webhooks.events import ForgeName
from raibid_api.webhooks.explain import explain_delivery
from raibid_api.webhooks.journal import Decision, JournalQuery
from raibid_api.webhooks.outcome import IntakeResult


class _ForgeConvertor(Convertor[str]):
    """A path segment naming a forge this server takes deliveries from, and nothing else.

    So `/webhook/deliveries` is never a delivery to a forge named "deliveries": a POST there is
    405 (the path serves GET), and a path naming no forge is 404.
    """

    regex = "|".join(get_args(ForgeName))

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("forge", _ForgeConvertor())
ForgePath = Annotated[str, Path(json_schema_extra={"enum": list(get_args(ForgeName))})]

router = APIRouter(tags=["webhooks"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 415, 422, 429, 503)
}
_DELIVERY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the forge's payload, exactly as it sends it (the signature covers it)",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": {"payload": {"type": "string"}}}
            },
        },
    }
}


class WebhookJobOut(BaseModel):
    """A delivery that made a job (202) or found one (200, with ``duplicate``)."""

    job_id: JobId
    status_url: str
    duplicate: Literal["delivery", "content"] | None = Field(
        default=None, description="a redelivery, or the same build still pending or running"
    )


class WebhookIgnoredOut(BaseModel):
    """A delivery that builds nothing (200)."""

    ignored: str = Field(description="the stable reason code, e.g. ping or branch_excluded")
    detail: str


class WebhookSpooledOut(BaseModel):
    """A delivery kept on local disk while Redis is away (202); its job appears on replay."""

    spooled: Literal[True]
    delivery_id: str


class DeliveryOut(BaseModel):
    """One entry of the delivery journal."""

    id: str = Field(description="the entry's id, also the cursor of the page after it")
    received_at: str
    forge: str
    event: str | None
    delivery_id: str | None
    signature: str | None = Field(
        description="valid, unsigned or mismatch; null when refused for another reason"
    )
    signature_valid: bool | None
    decision: Decision
    reason: str | None
    detail: str | None
    job_id: JobId | None
    repo: str | None
    source: str | None
    duration_ms: float
    spooled: bool


class DeliveryPageOut(BaseModel):
    """Journal entries, newest first."""

    deliveries: list[DeliveryOut]
    next_cursor: str | None


class ExplainIn(BaseModel):
    """A delivery to judge: its headers and its payload."""

    model_config = ConfigDict(extra="forbid")

    headers: dict[str, str] = Field(default_factory=dict, description="the delivery's headers")
    payload: dict[str, Any] | str = Field(
        description="the body: a JSON object, or the exact text the forge signed"
    )


class ExplanationOut(BaseModel):
    """What the intake would decide, and why."""

    decision: Decision
    reason: str | None
    detail: str | None
    forge: str
    event: str | None
    delivery_id: str | None
    signature: str | None
    repo: str | None
    job: dict[str, Any] | None
    duplicate_of: str | None
    supersedes: list[str]
    supersede_cancel: Literal["create_step", "after_create"] | None = Field(
        description="who cancels the superseded job: the step that stores the new job (a "
        "pending one), or the intake right after it (a running one)"
    )


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _answer(result: IntakeResult) -> Response:
    if result.ignored is not None:
        return _json({"ignored": result.ignored.reason.value, "detail": result.ignored.detail})
    if result.job is None:
        return _json({"spooled": True, "delivery_id": result.delivery_id}, 202)
    body = {"job_id": result.job["id"], "status_url": result.job["links"]["self"]}
    if result.duplicate is not None:
        return _json(body | {"duplicate": result.duplicate})
    return _json(body, 202)


def _request_headers(request: Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


async def receive_webhook(request: Request, forge: ForgePath) -> Response:
    """A push, tag or pull request delivery from Gitea, Forgejo or GitHub, HMAC-signed."""
    # the hottest write: read the body, hand it to the intake, answer (a `DirectRoute`)
    intake = state_of(request).intake
    headers = _request_headers(request)
    source = request.client.host if request.client is not None else "unknown"
    try:
        body = await request.body()
    except HTTPException as exc:
        if exc.status_code != 413:
            raise
        # the size limit stops a body as it arrives; the journal still hears of the delivery
        refused = await intake.refuse(forge, headers, source, PayloadTooLargeError(exc.detail))
        raise refused from None
    return _answer(await intake.receive(forge, headers, body, source))


router.add_api_route(
    "/{forge:forge}", receive_webhook, methods=["POST"], status_code=202,
    responses={
        202: {"model": WebhookJobOut | WebhookSpooledOut, "description": "a new job, or spooled"},
        200: {"model": WebhookJobOut | WebhookIgnoredOut, "description": "duplicate or ignored"},
        **_ERRORS,
    },
    openapi_extra=_DELIVERY_BODY, summary="Receive a forge webhook",
    route_class_override=DirectRoute,
)  # fmt: skip


@router.get(
    "/deliveries",
    response_model=DeliveryPageOut,
    responses=_ERRORS,
    summary="List webhook deliveries",
)
async def list_deliveries(
    intake: WebhookIntakeDep,
    _: ReadPrincipal,
    forge: Literal["gitea", "forgejo", "github"] | None = None,
    decision: Decision | None = None,
    repo: Annotated[
        str | None, Query(max_length=200, pattern=REPO_PATTERN.pattern, description="owner/name")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="`next_cursor` of the previous page: `<ms>-<seq>`",
            json_schema_extra={"pattern": r"^\d{1,20}-\d{1,20}$"},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Every delivery, accepted or not, newest first, kept for ``jobs.retention``."""
    page = await intake.journal.page(JournalQuery(forge, decision, repo), cursor, limit)
    entries = [entry.to_json(entry_id) for entry_id, entry in page.entries]
    return _json({"deliveries": entries, "next_cursor": page.next_cursor})


@router.post(
    "/{forge:forge}/explain",
    response_model=ExplanationOut,
    responses=_ERRORS,
    summary="Explain a webhook delivery",
)
async def explain_webhook(
    forge: ForgePath, body: ExplainIn, intake: WebhookIntakeDep, _: WritePrincipal
) -> Response:
    """What the intake would decide for this delivery, and why; writes nothing."""
    headers = {name.lower(): value for name, value in body.headers.items()}
    headers.setdefault("content-type", "application/json")
    if isinstance(body.payload, str):
        raw = body.payload.encode("utf-8", "surrogatepass")
    else:
        # json, not orjson: a payload may hold integers past 64 bits
        text = json.dumps(body.payload, separators=(",", ":"), ensure_ascii=False)
        raw = text.encode("utf-8", "surrogatepass")
    explanation = await explain_delivery(intake, forge, headers, raw)
    return _json(explanation.to_json())
