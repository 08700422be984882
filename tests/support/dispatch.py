"""The dispatcher tests' settings and the job and agent calls they make on the real services."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from raibid_api.api.deps import AppState
from raibid_api.config import Settings, load_settings
from raibid_api.dispatch.dispatcher import KubernetesDispatcher
from raibid_api.jobs.service import ManualTrigger

AGENT_TOKEN = "agent-token-0123456789"
# what the dispatchers of a test sign claim tokens with (a server keeps its own in Redis)
CLAIM_KEY = bytes(range(32))
# ``dispatcher_for(kubernetes={...})``: a dispatcher (a replica) with its own API client
DispatcherFactory = Callable[..., KubernetesDispatcher]


def base_settings(redis_url: str, prefix: str, tmp_path: Path, **sections: object) -> Settings:
    """Settings of a test server on the session Redis under the test's prefix."""
    defaults: dict[str, object] = {
        "redis": {"url": redis_url, "key_prefix": prefix},
        "auth": {"tokens": [{"name": "agents", "scopes": ["agent"], "value": AGENT_TOKEN}]},
        "dispatch": {"mode": "none"},
        "jobs": {"reaper_interval": "1h"},
        "webhooks": {"spool_dir": str(tmp_path / "spool")},
    }
    return load_settings(None, **(defaults | sections))


async def trigger(state: AppState, count: int = 1) -> list[str]:
    """Queue ``count`` manual jobs; their ids, oldest first."""
    ids = []
    for n in range(count):
        request = ManualTrigger(
            "acme/widgets", "https://git.example.test/acme/widgets.git", branch=f"b{n}"
        )
        ids.append(str((await state.jobs.trigger(request))["id"]))
    return ids


async def claim(state: AppState, agent_id: str) -> str:
    """Claim the next job as agent ``agent_id`` speaks the agent protocol; its id."""

    async def gone() -> bool:
        return False

    claimed = await state.agents.claim(agent_id, [], 1.0, gone)
    assert claimed is not None
    return str(claimed.job["id"])
