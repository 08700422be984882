"""Which job is the newest of each branch and pull request, for auto-cancel (`supersede_claim.lua`).

One small key per line of work names its newest webhook job, so finding what a new job supersedes
is one O(1) script, whatever the number of jobs; listing the branch's pending jobs through the
indexes would cost an intersection of sets that grow with every job.
"""

from __future__ import annotations

from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from raibid_api.storage.connection import shielded
from raibid_api.storage.keys import Keys

LATEST_TTL_S = 7 * 86_400


class SupersedeStore:
    """The newest job of each line of work (``branch:<name>`` or ``pr:<number>`` of a repo)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        source = resources.files("raibid_api.storage").joinpath("scripts", "supersede_claim.lua")
        self._claim: AsyncScript = redis.register_script(source.read_text())
        self._redis = redis
        self._keys = keys

    @shielded
    async def claim(self, repo: str, line: str, job_id: str, created_ms: int) -> str | None:
        """Make ``job_id`` the line's newest job; return the job it supersedes, if any.

        Returns:
            the previous newest job when ``job_id`` is newer; ``job_id`` itself when a newer
            job holds the line already; ``None`` when the line had none.
        """
        reply = await self._claim(
            keys=[self._keys.latest_job(repo, line)], args=[created_ms, job_id, LATEST_TTL_S]
        )
        return str(reply) or None

    @shielded
    async def latest(self, repo: str, line: str) -> str | None:
        """The line's newest job id, without changing anything."""
        value = await self._redis.get(self._keys.latest_job(repo, line))
        return str(value).partition(" ")[2] if value else None
