"""The Forgejo adapter: Gitea's payloads under Forgejo's header names.

Forgejo sends its ``X-Forgejo-*`` headers *and* the whole ``X-Gitea-*`` set with the same
values; the Forgejo names are read first, the Gitea ones are the fallback.
"""

from __future__ import annotations

from raibid_api.webhooks.gitea import GiteaAdapter

FORGEJO_ADAPTER = GiteaAdapter(
    name="forgejo",
    delivery_headers=("x-forgejo-delivery", "x-gitea-delivery"),
    event_headers=(
        "x-forgejo-event-type",
        "x-gitea-event-type",
        "x-forgejo-event",
        "x-gitea-event",
    ),
    signature_headers=("x-forgejo-signature", "x-gitea-signature"),
)
