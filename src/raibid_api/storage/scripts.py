"""The Lua scripts of `storage/scripts/`, registered once per client, each behind one typed wrapper.

The wrappers are the only place where a script's integer return codes become domain results and
errors; callers never see a raw reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from raibid_api.errors import JobNotFoundError, JobTokenError, TransitionConflictError


def script_source(name: str) -> str:
    """The text of ``storage/scripts/<name>.lua``."""
    return resources.files("raibid_api.storage").joinpath("scripts", f"{name}.lua").read_text()


@dataclass(frozen=True)
class CreateOutcome:
    """What `job_create.lua` did: made ``job_id``, or found it already there."""

    job_id: str
    duplicate: Literal["delivery", "content"] | None


@dataclass(frozen=True)
class CreateCall:
    """Every key and value `job_create.lua` takes (its header documents each)."""

    job_key: str
    queue_key: str
    delivery_key: str | None
    delivery_ttl: int
    content_key: str | None
    content_ttl: int
    index_keys: list[str]
    job_id: str
    score: int
    job_json: str
    fields: dict[str, str]


class Scripts:
    """The registered scripts of one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self._create: AsyncScript = redis.register_script(script_source("job_create"))
        self._transition: AsyncScript = redis.register_script(script_source("job_transition"))
        self._list: AsyncScript = redis.register_script(script_source("job_list"))

    async def create_job(self, call: CreateCall) -> CreateOutcome:
        """Run `job_create.lua`."""
        keys = [
            call.job_key,
            call.queue_key,
            call.delivery_key or call.job_key,
            call.content_key or call.job_key,
            *call.index_keys,
        ]
        args: list[Any] = [
            call.job_id,
            call.score,
            call.job_json,
            call.delivery_ttl if call.delivery_key else 0,
            call.content_ttl if call.content_key else 0,
        ]
        for key, value in call.fields.items():
            args += [key, value]
        reply = await self._create(keys=keys, args=args)
        code = int(reply[0])
        if code == 1:
            return CreateOutcome(call.job_id, None)
        if code == 0:
            return CreateOutcome(str(reply[1]), "delivery")
        return CreateOutcome(str(reply[1]), "content")

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
    ) -> str:
        """Run `job_transition.lua`; return the id of the `status` entry it wrote.

        Raises:
            JobNotFoundError: the job does not exist.
            JobTokenError: ``token_hash`` is given and is not the job's current token.
            TransitionConflictError: the job is not in ``expected`` (``current`` is filled in by
                the caller, which can read the job).
        """
        args: list[Any] = [
            expected, target, job_id, "1" if terminal else "0", retention_s, events_maxlen,
            group, expiry_ms, expiry_member, requeue_json, token_hash,
            "" if lease_ended_by is None else lease_ended_by,
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
