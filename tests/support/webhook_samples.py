"""Recorded forge payloads and the headers a real delivery of each carries, for the webhook tests.

The payloads are in the repository, in ``tests/fixtures/webhooks`` (their SOURCES.md says where
each one was copied from). Signatures are computed here with the standard library, independently
of the code under test, over the exact bytes of each file.
"""

from __future__ import annotations

import hmac
import json
import uuid
from typing import Any, Literal

from raibid_api.config import WebhookSettings
from raibid_api.webhooks.events import Ignored, IgnoreReason, WebhookEvent
from raibid_api.webhooks.registry import ADAPTERS
from tests.support.paths import WEBHOOK_FIXTURES

Forge = Literal["gitea", "forgejo", "github"]

SECRET = "webhook-test-secret-one"
OTHER_SECRET = "webhook-test-secret-two"


FIXTURE_FILES = sorted(
    path.relative_to(WEBHOOK_FIXTURES).as_posix() for path in WEBHOOK_FIXTURES.rglob("*.json")
)

# Event header `E` and exact event type `T` of each fixture, from the fixtures' SOURCES.md.
GITEA_EVENTS: dict[str, tuple[str, str]] = {
    "gitea/create-1.json": ("create", "create"),
    "gitea/delete-1.json": ("delete", "delete"),
    "gitea/pull_request-1.json": ("pull_request", "pull_request"),
    "gitea/pull_request-2.json": ("pull_request", "pull_request_sync"),
    "gitea/pull_request-3.json": ("pull_request", "pull_request"),
    "gitea/push-1.json": ("push", "push"),
    "gitea/push-2.json": ("push", "push"),
    "gitea/push-3.json": ("push", "push"),
}
GITHUB_EVENTS: dict[str, str] = {
    "github/ping-1.json": "ping",
    "github/pull_request-1.json": "pull_request",
    "github/push-1.json": "push",
    "github/push-2.json": "push",
}


def fixture_bytes(name: str) -> bytes:
    """The fixture file's exact bytes."""
    return (WEBHOOK_FIXTURES / name).read_bytes()


def hex_hmac(secret: str, body: bytes, digest: str = "sha256") -> str:
    """Lowercase hex HMAC of ``body``."""
    return hmac.new(secret.encode(), body, digest).hexdigest()


def gitea_headers(
    event: str, event_type: str, body: bytes, secret: str | None = SECRET
) -> dict[str, str]:
    """Every header a Gitea delivery sends (lower-cased); empty digests when ``secret`` is None."""
    delivery = str(uuid.uuid4())
    sig256 = hex_hmac(secret, body) if secret else ""
    sig1 = hex_hmac(secret, body, "sha1") if secret else ""
    return {
        "content-type": "application/json",
        "user-agent": "Go-http-client/1.1",
        "x-gitea-delivery": delivery,
        "x-gogs-delivery": delivery,
        "x-github-delivery": delivery,
        "x-gitea-event": event,
        "x-gogs-event": event,
        "x-github-event": event,
        "x-gitea-event-type": event_type,
        "x-gogs-event-type": event_type,
        "x-github-event-type": event_type,
        "x-gitea-signature": sig256,
        "x-gogs-signature": sig256,
        "x-hub-signature": f"sha1={sig1}",
        "x-hub-signature-256": f"sha256={sig256}",
        "x-gitea-hook-installation-target-type": "repository",
        "x-github-hook-installation-target-type": "repository",
    }


def forgejo_headers(
    event: str, event_type: str, body: bytes, secret: str | None = SECRET
) -> dict[str, str]:
    """Gitea's headers plus Forgejo's own, without the installation-target headers."""
    headers = gitea_headers(event, event_type, body, secret)
    del headers["x-gitea-hook-installation-target-type"]
    del headers["x-github-hook-installation-target-type"]
    headers["x-forgejo-delivery"] = headers["x-gitea-delivery"]
    headers["x-forgejo-event"] = event
    headers["x-forgejo-event-type"] = event_type
    headers["x-forgejo-signature"] = headers["x-gitea-signature"]
    return headers


def github_headers(event: str, body: bytes, secret: str | None = SECRET) -> dict[str, str]:
    """Every header a GitHub delivery sends; no signature headers when ``secret`` is None."""
    headers = {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/044aadd",
        "x-github-event": event,
        "x-github-delivery": str(uuid.uuid4()),
        "x-github-hook-id": "109948940",
        "x-github-hook-installation-target-type": "repository",
        "x-github-hook-installation-target-id": "186853002",
    }
    if secret:
        headers["x-hub-signature-256"] = f"sha256={hex_hmac(secret, body)}"
        headers["x-hub-signature"] = f"sha1={hex_hmac(secret, body, 'sha1')}"
    return headers


def delivery_headers(
    forge: Forge, event_type: str, body: bytes, secret: str | None = SECRET
) -> dict[str, str]:
    """The headers of a ``forge`` delivery of ``event_type`` (grouped event derived for Gitea)."""
    if forge == "github":
        return github_headers(event_type, body, secret)
    grouped = "pull_request" if event_type.startswith("pull_request") else event_type
    build = gitea_headers if forge == "gitea" else forgejo_headers
    return build(grouped, event_type, body, secret)


def fixture_delivery(
    forge: Forge, name: str, secret: str | None = SECRET
) -> tuple[dict[str, str], bytes]:
    """Headers and body of the fixture ``name`` as ``forge`` would deliver it, signed."""
    body = fixture_bytes(name)
    event_type = GITHUB_EVENTS[name] if forge == "github" else GITEA_EVENTS[name][1]
    return delivery_headers(forge, event_type, body, secret), body


def make_settings(**overrides: Any) -> WebhookSettings:
    """Webhook settings where every forge signs with `SECRET`, plus keyword overrides."""
    values: dict[str, Any] = {
        "gitea": {"secret": SECRET},
        "forgejo": {"secret": SECRET},
        "github": {"secret": SECRET},
    }
    values.update(overrides)
    return WebhookSettings(**values)


def fixture_payload(name: str) -> dict[str, Any]:
    """The fixture decoded, a fresh copy each call."""
    payload: dict[str, Any] = json.loads(fixture_bytes(name))
    return payload


def parse_event(forge: Forge, event_type: str, payload: dict[str, Any]) -> WebhookEvent:
    """What ``forge``'s adapter makes of the payload, which must be an event."""
    outcome = ADAPTERS[forge].parse(event_type, payload)
    assert isinstance(outcome, WebhookEvent), outcome
    return outcome


def parse_ignored(forge: Forge, event_type: str, payload: dict[str, Any]) -> IgnoreReason:
    """Why ``forge``'s adapter builds nothing for the payload."""
    outcome = ADAPTERS[forge].parse(event_type, payload)
    assert isinstance(outcome, Ignored), outcome
    return outcome.reason
