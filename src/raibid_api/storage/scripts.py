"""The Lua scripts of `storage/scripts/`, registered once per client, each behind one typed wrapper.

The wrappers are the only place where a script's integer return codes become domain results and
errors; callers never see a raw reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from raibid_api.domain.limits import RateLimit
from raibid_api.errors import (
    JobNotFoundError,
    JobTokenError,
    TransitionConflictError,
)
from raibid_api.storage.connection import ScriptBatcher

# Lua has no includes: a script that calls a library's functions is loaded with the library's
# text in front of its own, in this order.
LIBRARIES: dict[str, tuple[str, ...]] = {
    "job_create": ("lib_rate_limit", "lib_job_transition"),
    "job_transition": ("lib_job_transition",),
    "rate_limit_hit": ("lib_rate_limit",),
    "agent_heartbeat": ("agent_prelude",),
    "agent_append_logs": ("agent_prelude",),
    "agent_mark_completed": ("agent_prelude",),
    "agent_record_commit": ("agent_prelude",),
}


def _file(name: str) -> str:
    return resources.files("raibid_api.storage").joinpath("scripts", f"{name}.lua").read_text()


def script_source(name: str) -> str:
    """The text of ``storage/scripts/<name>.lua``, after the libraries it calls."""
    return "\n".join([*map(_file, LIBRARIES.get(name, ())), _file(name)])


def register(redis: Redis, name: str) -> AsyncScript:
    """Register the script ``name`` (with its libraries) on ``redis``."""
    return redis.register_script(script_source(name))


@dataclass(frozen=True)
class CreateOutcome:
    """What `job_create.lua` did.

    Attributes:
        job_id: the job made, or found (``duplicate``).
        duplicate: ``delivery`` or ``content``, for a job found rather than made.
        superseded: the job the new job superseded and the script left to the caller (running,
            with ``cancel_running``; or without a named content key), else ``None``.
        cancelled: the public fields of the job the script cancelled as superseded, else ``None``.
    """

    job_id: str
    duplicate: Literal["delivery", "content"] | None = None
    superseded: str | None = None
    cancelled: dict[str, str] | None = None


@dataclass(frozen=True)
class CreateCall:
    """Every key and value `job_create.lua` takes (its header documents each).

    ``line_key`` empty: the job supersedes nothing; ``rate_limit`` ``None``: not limited (its
    subjects' keys are ``rate_limit_keys``).
    """

    job_key: str
    queue_key: str
    delivery_key: str | None
    content_key: str | None
    line_key: str
    expiry_key: str
    rate_limit: RateLimit | None
    rate_limit_keys: list[str]
    index_keys: list[str]
    args: list[Any]
    """ARGV[1..22] of the script's header; the hash fields (ARGV[23]) come from ``fields``."""
    fields: dict[str, str]


_DUPLICATES: dict[int, Literal["delivery", "content"]] = {0: "delivery", 2: "content"}


class Scripts:
    """The registered scripts of one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self._create = register(redis, "job_create")
        self._creates = ScriptBatcher(redis)
        self._transition = register(redis, "job_transition")
        self._list = register(redis, "job_list")

    async def create_job(self, call: CreateCall) -> CreateOutcome:
        """Run `job_create.lua`, batched with the creates arriving alongside (`ScriptBatcher`).

        Raises:
            RateLimitedError: ``call.rate_limit`` refused it; nothing was written.
        """
        keys = [
            call.job_key, call.queue_key, call.delivery_key or call.job_key,
            call.content_key or call.job_key, call.line_key or call.job_key, call.expiry_key,
            *call.rate_limit_keys, *call.index_keys,
        ]  # fmt: skip
        # one JSON argument: redis-py packs each argument in Python, and a job has dozens
        args = [*call.args, orjson.dumps(call.fields)]
        reply = await self._creates.call(self._create, keys, args)
        job_id = str(call.args[0])
        code = int(reply[0])
        if code == 3:
            assert call.rate_limit is not None  # noqa: S101  (only a limited create is refused)
            raise call.rate_limit.refused(int(reply[1]), int(reply[2]))
        if code != 1:
            return CreateOutcome(str(reply[1]), duplicate=_DUPLICATES[code])
        if len(reply) == 5:
            flat = reply[4]
            cancelled = {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}
            return CreateOutcome(job_id, cancelled=cancelled)
        superseded = str(reply[2]) if len(reply) > 2 and reply[2] else None
        return CreateOutcome(job_id, superseded=superseded)

    async def transition(
        self,
        keys: list[str],
        *,
        job_id: str,
        expected: str,
        target: str,
        terminal: bool,
        retention_s: int,
        events_maxlen: int,
        group: str,
        expiry_ms: int,
        expiry_member: str,
        requeue_json: str,
        token_hash: str,
        lease_ended_by: int | None,
        fields: dict[str, str],
        note: str = "",
    ) -> str:
        """Run `job_transition.lua`; return the id of the `status` entry it wrote.

        ``note`` is a log line (``{t, stream, line}`` as JSON) written just before that entry.

        Raises:
            JobNotFoundError: the job does not exist.
            JobTokenError: ``token_hash`` is given and is not the job's current token.
            TransitionConflictError: the job is not in ``expected`` (``current`` is filled in by
                the caller, which can read the job).
        """
        args: list[Any] = [
            expected, target, job_id, "1" if terminal else "0", retention_s, events_maxlen,
            group, expiry_ms, expiry_member, requeue_json, token_hash,
            "" if lease_ended_by is None else lease_ended_by, note,
        ]  # fmt: skip
        for key, value in fields.items():
            args += [key, value]
        reply = await self._transition(keys=keys, args=args)
        code = int(reply[0])
        if code == -1:
            raise JobNotFoundError(job_id)
        if code == -2:
            raise JobTokenError("this job token is not valid for the job's current attempt")
        if code == 0:
            raise TransitionConflictError(
                f"job {job_id} is {reply[1]}, not {expected}; it cannot become {target}"
            )
        return str(reply[1])

    async def list_jobs(
        self, scratch_key: str, index_keys: list[str], *, upper: str, cursor_id: str, lower: str,
        limit: int,
    ) -> tuple[int, list[tuple[str, int]]]:  # fmt: skip
        """Run `job_list.lua`: the total number of matches and one page of (id, score)."""
        reply = await self._list(
            keys=[scratch_key, *index_keys], args=[upper, cursor_id, lower, limit]
        )
        total = int(reply[0])
        flat = reply[1:]
        return total, [(str(flat[i]), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]
