"""The `WebhookAdapter` role and the table of adapters, one per forge route."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

from raibid_api.webhooks.body import DeliveryBody
from raibid_api.webhooks.events import ForgeName, Ignored, WebhookEvent
from raibid_api.webhooks.fields import JSONObject
from raibid_api.webhooks.forgejo import FORGEJO_ADAPTER
from raibid_api.webhooks.gitea import GITEA_ADAPTER
from raibid_api.webhooks.github import GITHUB_ADAPTER
from raibid_api.webhooks.headers import Headers
from raibid_api.webhooks.signatures import SecretValue, SignatureResult


class WebhookAdapter(Protocol):
    """One forge's webhook dialect. Pure: no I/O, no clock, no configuration.

    Every ``headers`` argument is a mapping whose names are lower-cased.
    """

    @property
    def name(self) -> ForgeName:
        """The forge name, which is also the route segment ``/webhook/<name>``."""
        ...

    @property
    def delivery_headers(self) -> tuple[str, ...]:
        """Header names holding the delivery id, in order of preference."""
        ...

    @property
    def event_headers(self) -> tuple[str, ...]:
        """Header names holding the event type, in order of preference."""
        ...

    @property
    def signature_headers(self) -> tuple[str, ...]:
        """Header names holding the forge's own HMAC digest, in order of preference."""
        ...

    def delivery_id(self, headers: Headers) -> str | None:
        """The forge's id of this delivery, ``None`` when absent.

        Raises:
            InvalidWebhookError: the id is malformed.
        """
        ...

    def event_type(self, headers: Headers) -> str | None:
        """The event type that routes the payload, ``None`` when absent."""
        ...

    def read_body(self, content_type: str | None, body: bytes) -> DeliveryBody:
        """The JSON payload bytes and the bytes the forge signed.

        Raises:
            UnsupportedMediaTypeError: neither JSON nor a form.
            InvalidWebhookError: a form without exactly one ``payload`` field.
        """
        ...

    def verify(
        self,
        headers: Headers,
        signed: bytes,
        secrets: Sequence[SecretValue],
        authorization: SecretValue | None,
    ) -> SignatureResult:
        """Check the delivery's credentials against every secret (and the Authorization value).

        Any presented credential that fails makes `MISMATCH`, even when another one verifies.
        """
        ...

    def parse(
        self, event_type: str, payload: JSONObject, *, with_paths: bool = True
    ) -> WebhookEvent | Ignored:
        """The event one delivery stands for, or why it builds nothing.

        ``with_paths=False`` leaves the event's ``changed_paths`` unknown, for a repository
        without path filters: reading every commit's file lists is most of the parsing.

        Raises:
            InvalidWebhookError: a field the event needs is missing or has the wrong type.
        """
        ...


ADAPTERS: Mapping[str, WebhookAdapter] = MappingProxyType(
    {adapter.name: adapter for adapter in (GITEA_ADAPTER, FORGEJO_ADAPTER, GITHUB_ADAPTER)}
)
"""Every adapter by forge name: ``gitea``, ``forgejo``, ``github``."""
