"""The Gitea adapter: Gitea's headers and payloads into `WebhookEvent`s.

Forgejo sends the same payloads under its own header names, so `GiteaAdapter` serves both
(see `raibid_api.webhooks.forgejo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from raibid_api.webhooks.events import ForgeName, Ignored, WebhookEvent, ignore_event
from raibid_api.webhooks.fields import JSONObject, optional_login
from raibid_api.webhooks.headers import HeaderReading, Headers, first_header
from raibid_api.webhooks.payloads import parse_pull_request, parse_push
from raibid_api.webhooks.signatures import (
    SecretValue,
    SignatureResult,
    combine,
    verify_authorization,
    verify_hex_digest,
    verify_hub_signature,
)

HUB_SIGNATURE_HEADER = "x-hub-signature-256"
AUTHORIZATION_HEADER = "authorization"
# `pull_request_sync` is the exact type of "new commits on the head"; the grouped
# `X-Gitea-Event` folds it into `pull_request`, so both build, told apart by `action`.
PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_sync"})
BUILD_ACTIONS = frozenset({"opened", "reopened", "synchronized"})


def commits_complete(payload: JSONObject) -> bool:
    """Whether ``commits[]`` lists every pushed commit: ``total_commits`` equals its length.

    Gitea cuts ``commits[]`` to ``[ui] FEED_MAX_COMMIT_NUM`` entries (Forgejo to
    ``[webhook] PAYLOAD_COMMIT_LIMIT``) while ``total_commits`` keeps the real count; old Gitea
    sends no ``total_commits`` at all, and then nothing is known.
    """
    commits = payload.get("commits")
    total = payload.get("total_commits")
    if not isinstance(commits, list) or isinstance(total, bool) or not isinstance(total, int):
        return False
    return bool(commits) and total == len(commits)


@dataclass(frozen=True, slots=True)
class GiteaAdapter(HeaderReading):
    """A forge speaking Gitea's webhook format; the header names say which forge it is.

    Attributes:
        name: the forge name (also the route segment, ``/webhook/<name>``).
        delivery_headers: where the delivery id is, first non-empty wins.
        event_headers: where the exact event type is, first non-empty wins; the grouped
            ``X-Gitea-Event`` comes last, as a fallback for Gitea versions without
            ``X-Gitea-Event-Type``.
        signature_headers: bare-hex HMAC headers, first non-empty wins; ``X-Hub-Signature-256``
            (``sha256=<hex>``, the same digest) is the fallback.
    """

    name: ForgeName = "gitea"
    delivery_headers: tuple[str, ...] = ("x-gitea-delivery",)
    event_headers: tuple[str, ...] = ("x-gitea-event-type", "x-gitea-event")
    signature_headers: tuple[str, ...] = ("x-gitea-signature",)
    form_signs_payload: bool = True

    def verify(
        self,
        headers: Headers,
        signed: bytes,
        secrets: Sequence[SecretValue],
        authorization: SecretValue | None,
    ) -> SignatureResult:
        """The HMAC (bare hex, else ``X-Hub-Signature-256``) and the Authorization header."""
        digest = first_header(headers, self.signature_headers)
        if digest is not None:
            hmac_result = verify_hex_digest(digest, signed, secrets)
        else:
            hmac_result = verify_hub_signature(headers.get(HUB_SIGNATURE_HEADER), signed, secrets)
        auth_result = verify_authorization(headers.get(AUTHORIZATION_HEADER), authorization)
        return combine(hmac_result, auth_result)

    def parse(
        self, event_type: str, payload: JSONObject, *, with_paths: bool = True
    ) -> WebhookEvent | Ignored:
        """A ``push`` or ``pull_request``/``pull_request_sync`` into an event; others ignored."""
        if event_type == "push":
            pusher = optional_login(payload, "pusher") or optional_login(payload, "sender")
            return parse_push(
                self.name,
                payload,
                pusher=pusher,
                commits_complete=with_paths and commits_complete(payload),
            )
        if event_type in PULL_REQUEST_EVENTS:
            return parse_pull_request(self.name, payload, build_actions=BUILD_ACTIONS)
        return ignore_event(event_type)


GITEA_ADAPTER = GiteaAdapter()
