"""The pure intake of one delivery: headers and body in, a verified and filtered decision out.

`read_delivery` is what the webhook route (and ``/explain``) call; it does no I/O, so the
storage step (dedup, coalescing, the job write) happens after it, in the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from raibid_api.config import ForgeWebhookSettings, WebhookSettings
from raibid_api.errors import (
    InvalidWebhookError,
    PayloadTooLargeError,
    SignatureMismatchError,
    SignatureMissingError,
)
from raibid_api.webhooks.body import parse_json_object
from raibid_api.webhooks.events import ForgeName, Ignored, WebhookEvent
from raibid_api.webhooks.headers import Headers
from raibid_api.webhooks.payloads import repository_name
from raibid_api.webhooks.registry import WebhookAdapter
from raibid_api.webhooks.rules import apply_rules, repo_settings
from raibid_api.webhooks.signatures import SignatureResult

CONTENT_TYPE_HEADER = "content-type"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What authenticates one delivery: HMAC secrets (any may match) and an Authorization value."""

    secrets: tuple[SecretStr, ...] = ()
    authorization: SecretStr | None = None

    @property
    def configured(self) -> bool:
        """Whether anything is configured to check a delivery against."""
        return bool(self.secrets) or self.authorization is not None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One authenticated delivery and what it means.

    Attributes:
        forge: the adapter's forge.
        delivery_id: the forge's delivery id, ``None`` when the delivery carries none (no forge
            omits it; hand-made requests may).
        event_type: the event type the payload was routed on.
        signature: `SignatureResult.VALID`, or `UNSIGNED` when ``allow_unsigned`` let it in.
        repo: ``repository.full_name`` of the payload when it has one (also for ignored events).
        outcome: the event to build (rules already applied), or why nothing is built.
    """

    forge: ForgeName
    delivery_id: str | None
    event_type: str
    signature: SignatureResult
    repo: str | None
    outcome: WebhookEvent | Ignored


def _forge_settings(settings: WebhookSettings, forge: ForgeName) -> ForgeWebhookSettings:
    by_forge = {"gitea": settings.gitea, "forgejo": settings.forgejo, "github": settings.github}
    return by_forge[forge]


def credentials_for(settings: WebhookSettings, forge: ForgeName, repo: str | None) -> Credentials:
    """The credentials a delivery for ``repo`` from ``forge`` must present.

    A repository's own ``secret`` overrides the forge's secrets and Authorization value: only
    that secret authenticates the repository's deliveries.
    """
    override = repo_settings(settings, repo) if repo is not None else None
    if override is not None and override.secret is not None:
        return Credentials(secrets=(override.secret,))
    forge_settings = _forge_settings(settings, forge)
    return Credentials(tuple(forge_settings.all_secrets()), forge_settings.authorization)


def _credentials(settings: WebhookSettings, forge: ForgeName, payload: bytes) -> Credentials:
    if not any(repo.secret is not None for repo in settings.repos.values()):
        return credentials_for(settings, forge, None)
    # Only a per-repository secret needs the repository before the signature is checked; the
    # payload is not trusted for anything else until then.
    try:
        repo = repository_name(parse_json_object(payload))
    except InvalidWebhookError:
        repo = None
    return credentials_for(settings, forge, repo)


def _require_authenticated(
    signature: SignatureResult, credentials: Credentials, allow_unsigned: bool
) -> None:
    if signature is SignatureResult.MISMATCH:
        raise SignatureMismatchError("the webhook signature does not match")
    if signature is SignatureResult.UNSIGNED and (credentials.configured or not allow_unsigned):
        raise SignatureMissingError("the webhook delivery is not signed")


def read_delivery(
    adapter: WebhookAdapter, headers: Headers, body: bytes, settings: WebhookSettings
) -> Delivery:
    """Verify, decode, parse and filter one delivery.

    An unsigned delivery passes only with ``allow_unsigned`` *and* no credential configured for
    it: once a secret exists, an unsigned delivery is refused.

    Args:
        adapter: the forge's adapter (``ADAPTERS[forge]``).
        headers: the request headers, names lower-cased.
        body: the request body exactly as received.
        settings: the ``webhooks`` configuration section.

    Raises:
        PayloadTooLargeError: the body is over ``max_body_bytes``.
        UnsupportedMediaTypeError: the body is neither JSON nor a form.
        SignatureMismatchError: a presented signature or Authorization value is wrong.
        SignatureMissingError: nothing authenticates the delivery and that is not allowed.
        InvalidWebhookError: no event type header, a malformed delivery id, a payload that is
            not a JSON object, or one missing a field its event needs.
    """
    if len(body) > settings.max_body_bytes:
        raise PayloadTooLargeError(f"webhook bodies are limited to {settings.max_body_bytes} bytes")
    parts = adapter.read_body(headers.get(CONTENT_TYPE_HEADER), body)
    credentials = _credentials(settings, adapter.name, parts.payload)
    signature = adapter.verify(
        headers, parts.signed, credentials.secrets, credentials.authorization
    )
    _require_authenticated(signature, credentials, settings.allow_unsigned)
    delivery_id = adapter.delivery_id(headers)
    event_type = adapter.event_type(headers)
    if event_type is None:
        raise InvalidWebhookError(f"the {adapter.name} delivery has no event type header")
    payload = parse_json_object(parts.payload)
    repo = repository_name(payload)
    override = repo_settings(settings, repo) if repo is not None else None
    outcome = adapter.parse(event_type, payload, with_paths=bool(override and override.paths))
    if isinstance(outcome, WebhookEvent):
        outcome = apply_rules(outcome, settings)
    return Delivery(
        forge=adapter.name,
        delivery_id=delivery_id,
        event_type=event_type,
        signature=signature,
        repo=repo,
        outcome=outcome,
    )
