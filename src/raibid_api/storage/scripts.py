"""The Lua scripts of `storage/scripts/`, registered once per client, each behind one typed wrapper.

The wrappers are the only place where a script's replies (return codes, or the create script's
tags) become domain results and errors, and where its KEYS and ARGV are laid out; callers never
see a raw reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from raibid_api.domain.jobs import Supersession
from raibid_api.domain.limits import RATE_WINDOW_MS, RateLimit
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


@dataclass(frozen=True, slots=True)
class Superseded:
    """The job a new job supersedes and that is to end (`job_create.lua`'s ``created`` reply).

    Attributes:
        job_id: the superseded job (the new job itself when a newer job of its line exists).
        cancelled_here: ended by the create step itself (a pending job); else left to the
            caller (running, with ``cancel_running``; or pending without a named content key).
        fields: its public fields after the step cancelled it; ``None`` in a dry run, and when
            left to the caller.
    """

    job_id: str
    cancelled_here: bool
    fields: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    """What `job_create.lua` did, or in a dry run would do.

    Attributes:
        job_id: the job made (or that a dry run would make), or found (``duplicate``).
        duplicate: ``delivery`` or ``content``, for a job found rather than made.
        superseded: the job the new job supersedes and that ends, else ``None``.
    """

    job_id: str
    duplicate: Literal["delivery", "content"] | None = None
    superseded: Superseded | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateCall:
    """Everything `job_create.lua` takes, by name (its header documents each).

    `Scripts.create_job` alone knows where each goes among the script's KEYS and ARGV.
    """

    job_id: str
    created_ms: int
    """The creation score in every index, and the time the rate limits count."""
    job_json: bytes
    """The Job JSON of the queue entry."""
    fields: dict[str, str]
    """The new job's hash fields."""
    job_key: str
    queue_key: str
    expiry_key: str
    status_events_key: str
    index_keys: list[str]
    delivery_key: str | None
    """A known delivery finds its job; ``None``: no delivery dedup."""
    delivery_ttl_s: int
    content_key: str | None
    """An active job building the same is found; ``None``: no content dedup."""
    content_ttl_s: int
    rate_limit: RateLimit | None
    rate_limit_keys: list[str]
    """The keys of ``rate_limit``'s subjects, in its order."""
    line_key: str | None
    """The line's newest-job key; ``None``: the job supersedes nothing."""
    line_ttl_s: int
    supersede: Supersession | None
    retention_s: int
    status_maxlen: int
    group: str
    separator: str
    templates: list[str]
    dry_run: bool = False
    """Decide, and write nothing at all."""
    replicas: int = 0
    """How many replicas must hold the write before it counts (`ScriptBatcher`)."""


_DUPLICATES: dict[str, Literal["delivery", "content"]] = {
    "delivery": "delivery",
    "content": "content",
}


class Scripts:
    """The registered scripts of one Redis client."""

    def __init__(self, redis: Redis, *, replica_timeout_ms: int = 500) -> None:
        self._create = register(redis, "job_create")
        self._creates = ScriptBatcher(redis, replica_timeout_ms=replica_timeout_ms)
        self._transition = register(redis, "job_transition")
        self._list = register(redis, "job_list")

    async def create_job(self, call: CreateCall) -> CreateOutcome:
        """Run `job_create.lua`, batched with the creates arriving alongside (`ScriptBatcher`).

        The one place that knows the script's KEYS order, its ARGV (one JSON object of the
        call's values, then the queue entry's Job JSON) and its tagged replies.

        Raises:
            RateLimitedError: ``call.rate_limit`` refused it (or, in a dry run, would); nothing
                was written or counted.
        """
        keys = [
            call.job_key, call.queue_key, call.delivery_key or call.job_key,
            call.content_key or call.job_key, call.line_key or call.job_key, call.expiry_key,
            call.status_events_key, *call.rate_limit_keys, *call.index_keys,
        ]  # fmt: skip
        limit = call.rate_limit
        supersede = call.supersede
        # one JSON argument: redis-py packs each argument in Python, and cjson decodes in C
        params = {
            "job_id": call.job_id,
            "score": str(call.created_ms),
            "fields": call.fields,
            "dry_run": call.dry_run,
            "delivery_ttl": call.delivery_ttl_s if call.delivery_key else 0,
            "content_ttl": call.content_ttl_s if call.content_key else 0,
            "limits": len(call.rate_limit_keys) if limit else 0,
            "per_window": limit.per_minute if limit else 0,
            "window": RATE_WINDOW_MS,
            "line_ttl": call.line_ttl_s if call.line_key and supersede else 0,
            "reason": supersede.reason if supersede else "",
            "cancel_running": supersede.cancel_running if supersede else False,
            "retention": call.retention_s,
            "status_maxlen": call.status_maxlen,
            "group": call.group,
            "separator": call.separator,
            "templates": call.templates,
        }
        reply = await self._creates.call(
            self._create, keys, [orjson.dumps(params), call.job_json], replicas=call.replicas
        )
        return _create_outcome(call, reply)

    async def transition(
        self,
        keys: list[str],
        *,
        job_id: str,
        expected: str,
        target: str,
        terminal: bool,
        retention_s: int,
        status_maxlen: int,
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
            expected, target, job_id, "1" if terminal else "0", retention_s, status_maxlen,
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


def _create_outcome(call: CreateCall, reply: list[Any]) -> CreateOutcome:
    """Decode `job_create.lua`'s tagged reply (its header lists them)."""
    tag = reply[0]
    if tag == "created":
        superseded = str(reply[2])
        if not superseded:
            return CreateOutcome(call.job_id)
        cancelled_here = reply[3] == "cancelled"
        fields = _pairs(reply[4]) if cancelled_here and not call.dry_run else None
        return CreateOutcome(call.job_id, superseded=Superseded(superseded, cancelled_here, fields))
    if tag == "duplicate":
        return CreateOutcome(str(reply[2]), duplicate=_DUPLICATES[str(reply[1])])
    if tag == "rate_limited" and call.rate_limit is not None:
        raise call.rate_limit.refused(int(reply[1]), int(reply[2]))
    raise RuntimeError(f"job_create.lua answered {tag!r}, which no reply of it is")


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}
