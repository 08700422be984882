"""The GitHub adapter: GitHub's headers and payloads into `WebhookEvent`s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from raibid_api.webhooks.events import ForgeName, Ignored, WebhookEvent, ignore_event
from raibid_api.webhooks.fields import JSONObject, optional_login, optional_object, optional_str
from raibid_api.webhooks.headers import HeaderReading, Headers
from raibid_api.webhooks.payloads import parse_pull_request, parse_push
from raibid_api.webhooks.signatures import (
    SecretValue,
    SignatureResult,
    combine,
    verify_authorization,
    verify_hub_signature,
)

DELIVERY_HEADER = "x-github-delivery"
EVENT_HEADER = "x-github-event"
SIGNATURE_HEADER = "x-hub-signature-256"
AUTHORIZATION_HEADER = "authorization"
BUILD_ACTIONS = frozenset({"opened", "reopened", "synchronize"})
# GitHub lists at most 2048 commits in a push delivery; a full list may have been cut.
MAX_LISTED_COMMITS = 2048


def commits_complete(payload: JSONObject) -> bool:
    """Whether ``commits[]`` covers the push: not cut at the limit, and not a force push.

    GitHub sends no commit count. A force push lists only the commits new since the merge base,
    so the paths that changed against the old head are not all there.
    """
    commits = payload.get("commits")
    if not isinstance(commits, list) or payload.get("forced") is True:
        return False
    return 0 < len(commits) < MAX_LISTED_COMMITS


def _pusher(payload: JSONObject) -> str | None:
    """``sender.login``; GitHub's ``pusher`` is only ``{name, email}``."""
    login = optional_login(payload, "sender")
    if login is not None:
        return login
    pusher = optional_object(payload, "pusher")
    return optional_str(pusher, "name", "pusher.") if pusher else None


@dataclass(frozen=True, slots=True)
class GitHubAdapter(HeaderReading):
    """GitHub webhooks: ``X-GitHub-Event`` routing and ``X-Hub-Signature-256`` over the raw body."""

    name: ForgeName = "github"
    delivery_headers: tuple[str, ...] = (DELIVERY_HEADER,)
    event_headers: tuple[str, ...] = (EVENT_HEADER,)
    signature_headers: tuple[str, ...] = (SIGNATURE_HEADER,)
    form_signs_payload: bool = False

    def verify(
        self,
        headers: Headers,
        signed: bytes,
        secrets: Sequence[SecretValue],
        authorization: SecretValue | None,
    ) -> SignatureResult:
        """``X-Hub-Signature-256`` (sent only when the hook has a secret), and Authorization."""
        hmac_result = verify_hub_signature(headers.get(SIGNATURE_HEADER), signed, secrets)
        auth_result = verify_authorization(headers.get(AUTHORIZATION_HEADER), authorization)
        return combine(hmac_result, auth_result)

    def parse(
        self, event_type: str, payload: JSONObject, *, with_paths: bool = True
    ) -> WebhookEvent | Ignored:
        """A ``push`` or ``pull_request`` into an event; ``ping`` and others are ignored."""
        if event_type == "push":
            return parse_push(
                self.name,
                payload,
                pusher=_pusher(payload),
                commits_complete=with_paths and commits_complete(payload),
            )
        if event_type == "pull_request":
            return parse_pull_request(self.name, payload, build_actions=BUILD_ACTIONS)
        return ignore_event(event_type)


GITHUB_ADAPTER = GitHubAdapter()
