"""The app wires status reporting in: a job changed through the API reaches the forge double."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from raibid_api.config import load_settings
from raibid_api.embedded import EmbeddedRedis
from tests.support.api import TOKENS, WRITE, running_app, trigger_body
from tests.support.forge_double import ForgeDouble
from tests.support.forges import FORGE_TOKEN, KNOWN_REPO, PUBLIC_URL
from tests.support.polling import eventually


async def test_cancelled_manual_job_reaches_the_configured_forge(
    redis_server: EmbeddedRedis, prefix: str, tmp_path: Path, gitea: ForgeDouble, redis: Redis
) -> None:
    settings = load_settings(
        None,
        server={"public_url": PUBLIC_URL},
        redis={"url": redis_server.url, "key_prefix": prefix},
        auth={"tokens": TOKENS},
        dispatch={"mode": "none"},
        webhooks={"spool_dir": str(tmp_path / "spool")},
        forges={"gitea": {"url": gitea.url, "token": FORGE_TOKEN, "context": "ci/raibid"}},
    )
    sha = "d" * 40
    async with running_app(settings) as api:
        body = trigger_body(clone_url=f"{gitea.url}/acme/widgets.git", commit=sha)
        created = await api.post("/jobs", json=body, headers=WRITE)
        job_id = created.json()["id"]
        cancelled = await api.post(f"/jobs/{job_id}/cancel", headers=WRITE)
        assert cancelled.status_code == 200
        await eventually(
            lambda: gitea.shown(KNOWN_REPO, sha, "ci/raibid") == "error", what="the error status"
        )
    final = gitea.statuses[-1]
    assert final.target_url == f"{PUBLIC_URL}/ui/jobs/{job_id}"
    assert final.description.startswith("Cancelled")
