"""The Redis client: a bounded connection pool, and calls that survive the caller's cancellation.

redis.asyncio leaks a pooled connection (or worse, hands the next caller a reply meant for another)
when a task is cancelled in the middle of a command: a client that disconnects, an
``asyncio.timeout``. So no cancellation may land inside a pooled call: `shielded` runs each storage
operation as its own task that the caller's cancellation does not reach. The operation still ends,
because every socket read is bounded by ``socket_timeout``, and its connection returns to the pool.

Nothing is sent twice behind the caller's back: the client has no `Retry` (redis-py's re-sent a
command after a timeout, so a write that had landed ran again and a stall cost a multiple of the
timeout). The caller waits at most ``socket_timeout`` for a whole operation, whatever it is
waiting on (a pooled connection, a connect, a reply), and then gets `ServiceUnavailableError`;
retries are left to whoever can make them safe, and every script that creates or appends
recognises its own earlier effect, so a retried call after a lost reply never doubles anything.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from raibid_api.config import RedisSettings
from raibid_api.errors import ServiceUnavailableError
from raibid_api.observability.metrics import RedisCall

RedisClient = Redis
"""The client type the rest of the server is handed (only storage/ imports redis)."""

P = ParamSpec("P")
T = TypeVar("T")

_background: set[asyncio.Future[Any]] = set()


def _forget(task: asyncio.Future[Any]) -> None:
    _background.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it as never retrieved


async def settle_background() -> None:
    """Wait for the storage calls whose callers were cancelled; call it before closing a client.

    Each such call ends on its own (bounded by the socket timeout); closing the client first would
    hand its connection back to a closed pool.
    """
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)


class _Deadline:
    """How long a caller waits for one storage operation: ``redis.socket_timeout``.

    One configuration per process: `create_redis` sets it (tests share the default).
    """

    seconds = 5.0


def call_deadline() -> float:
    """How long a caller waits for one storage operation: ``redis.socket_timeout``."""
    return _Deadline.seconds


def _leave_running(task: asyncio.Future[Any]) -> None:
    if not task.done():
        _background.add(task)
        task.add_done_callback(_forget)


async def _await_bounded(task: asyncio.Future[T], deadline: float | None) -> T:
    """Await ``task`` for up to ``deadline`` seconds; past it, or when cancelled, leave it running.

    The deadline is one timer on the loop that cancels the wait (not the task): what
    `asyncio.timeout` does, for a third of its cost on every storage step.

    Raises:
        ServiceUnavailableError: ``deadline`` passed (the operation still ends on its own).
    """
    waiting = asyncio.shield(task)
    if deadline is None:
        try:
            return await waiting
        except asyncio.CancelledError:
            _leave_running(task)
            raise
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        waiting.cancel()

    timer = asyncio.get_running_loop().call_later(deadline, expire)
    try:
        return await waiting
    except asyncio.CancelledError:
        _leave_running(task)
        current = asyncio.current_task()
        # the deadline cancelled the wait, and nobody cancelled the caller meanwhile
        if expired and current is not None and not current.cancelling():
            raise ServiceUnavailableError(f"Redis did not answer within {deadline:g}s") from None
        raise
    finally:
        timer.cancel()


def _shield(fn: Callable[P, Coroutine[Any, Any, T]], *, bounded: bool) -> Callable[P, Awaitable[T]]:
    # each call is timed, and its failures counted, under the operation's name (JobStore.get)
    metric = RedisCall(fn.__qualname__)

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        task = asyncio.ensure_future(_translated(fn(*args, **kwargs), metric))
        return await _await_bounded(task, _Deadline.seconds if bounded else None)

    return run


def shielded(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Awaitable[T]]:
    """Run a storage operation so that cancelling the caller never interrupts its Redis calls.

    The caller waits at most `call_deadline` for it. Redis failures become
    `ServiceUnavailableError`, which the API answers with 503.
    """
    return _shield(fn, bounded=True)


def shielded_blocking(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Awaitable[T]]:
    """`shielded`, for a blocking read that waits longer than a call (`XREAD BLOCK`)."""
    return _shield(fn, bounded=False)


def lost_group(exc: BaseException) -> bool:
    """Whether ``exc`` says a consumer group is missing: Redis lost its data (``NOGROUP``)."""
    return isinstance(exc, ResponseError) and str(exc).startswith("NOGROUP")


async def create_group(redis: Redis, stream: str, group: str) -> bool:
    """Create ``group`` on ``stream`` at id 0 (the stream too); False when it exists already.

    At id 0, so that every entry already in the stream (added after Redis lost the group) is
    delivered.
    """
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


async def regrouped(call: Callable[[], Awaitable[T]], repair: Callable[[], Awaitable[object]]) -> T:
    """``call()``; when its group is missing (``NOGROUP``), ``repair()`` and call once more.

    Only for calls that change nothing when they fail with ``NOGROUP``.
    """
    try:
        return await call()
    except ResponseError as exc:
        if not lost_group(exc):
            raise
    await repair()
    return await call()


async def _translated(call: Coroutine[Any, Any, T], metric: RedisCall) -> T:
    started = time.perf_counter()
    try:
        return await call
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        metric.failed("unavailable")
        raise ServiceUnavailableError(f"Redis is unavailable: {type(exc).__name__}") from exc
    except RedisError as exc:
        unavailable = _refused_write(exc)
        if unavailable is not None:
            metric.failed("unavailable")
            raise unavailable from exc
        metric.failed("error")
        raise
    finally:
        metric.observe(time.perf_counter() - started)


def _refused_write(exc: Exception) -> ServiceUnavailableError | None:
    """The 503 for a Redis that answers but refuses writes for now, else None."""
    # redis-py names these by class (the code is not in the message): a replica, or a master
    # demoted under a failover, refuses writes; so does a full one under noeviction
    if isinstance(exc, ReadOnlyError) or "LOADING" in str(exc) or "READONLY" in str(exc):
        return ServiceUnavailableError("Redis is not ready to serve writes")
    if isinstance(exc, OutOfMemoryError):
        return ServiceUnavailableError("Redis is full (maxmemory): it refuses writes")
    return None


class _SentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The master's connections found through Sentinel, in a pool that waits for a free one."""


class SentinelRedis(Redis):
    """A client of the master that Sentinel names: each new connection asks the Sentinels.

    A failover needs no restart: connections to the old master break (or answer ``READONLY``,
    which redis-py turns into a reconnect), and the next connection goes to the new master.
    """

    sentinels: Sentinel

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the master's pool and the connections to the Sentinels."""
        await super().aclose(close_connection_pool)
        for client in self.sentinels.sentinels:
            await client.aclose()


def create_redis(
    url: str | None, settings: RedisSettings, *, blocking: bool = False
) -> RedisClient:
    """A client with a bounded pool: waits up to ``pool_timeout`` for a free connection.

    Args:
        url: the Redis URL (may carry a password; never logged); None with Sentinel.
        settings: timeouts, pool size, Sentinel.
        blocking: a client for blocking reads (`XREAD BLOCK`); no socket timeout cuts them.
    """
    socket_timeout = settings.socket_timeout.total_seconds()
    if not blocking:
        _Deadline.seconds = socket_timeout
    options: dict[str, Any] = {
        "max_connections": settings.max_connections,
        "timeout": settings.pool_timeout.total_seconds(),
        "socket_timeout": None if blocking else socket_timeout,
        "socket_connect_timeout": settings.connect_timeout.total_seconds(),
        "socket_keepalive": True,
        "health_check_interval": 30,
        "decode_responses": True,
        "retry": Retry(NoBackoff(), 0),  # never re-send: see the module's docstring
    }
    if settings.sentinel.master:
        return _sentinel_client(settings.sentinel.master, settings, options)
    if url is None:
        raise ValueError("a Redis URL is needed without Sentinel")
    pool = BlockingConnectionPool.from_url(url, **options)
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections


# redis-py leaves these two constructors unannotated: typed here, once
_new_sentinel: Callable[..., Sentinel] = Sentinel
_new_sentinel_pool: Callable[..., _SentinelPool] = _SentinelPool


def _sentinel_client(
    master: str, settings: RedisSettings, options: dict[str, Any]
) -> SentinelRedis:
    sentinel_settings = settings.sentinel
    own = sentinel_settings.password
    sentinel = _new_sentinel(
        sentinel_settings.endpoints(),
        sentinel_kwargs={
            "socket_timeout": settings.socket_timeout.total_seconds(),
            "socket_connect_timeout": settings.connect_timeout.total_seconds(),
            "password": own.get_secret_value() if own else None,
            "decode_responses": True,
            "retry": Retry(NoBackoff(), 0),
        },
    )
    password = settings.password
    pool = _new_sentinel_pool(
        master, sentinel, is_master=True, check_connection=False,
        password=password.get_secret_value() if password else None, db=settings.db, **options,
    )  # fmt: skip
    client = SentinelRedis(connection_pool=pool)
    client.auto_close_connection_pool = True  # as `Redis.from_pool`: aclose() closes the pool
    client.sentinels = sentinel
    return client


_BATCH_METRIC = RedisCall("ScriptBatcher.batch")


@dataclass(frozen=True, slots=True)
class _Call:
    script: AsyncScript
    keys: list[Any]
    args: list[Any]
    replicas: int
    reply: asyncio.Future[Any]


class ScriptBatcher:
    """Runs script calls that arrive together as one pipeline: one round trip for many.

    A call waits in a queue that one task at a time sends (``EVALSHA`` each, not a
    transaction: every script is atomic on its own); the next batch forms while one is in
    flight. Under load many deliveries share a round trip, the socket writes and reads, and a
    pooled connection; alone, a call costs what a direct one does. The sending task is not the
    caller's, so a caller's cancellation never interrupts a Redis call (see `shielded`).

    A call that must reach replicas before it counts (``replicas``) ends its batch with one
    ``WAIT``, which covers every write of the batch; when fewer replicas acknowledged within
    ``replica_timeout_ms``, such a call raises `ServiceUnavailableError`, although its write
    stands on the master (a retry finds it: the scripts recognise their own earlier effect).
    """

    def __init__(self, redis: Redis, *, replica_timeout_ms: int = 500) -> None:
        self._redis = redis
        self._replica_timeout_ms = replica_timeout_ms
        self._queue: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None

    async def call(
        self, script: AsyncScript, keys: list[Any], args: list[Any], *, replicas: int = 0
    ) -> Any:
        """Run ``script`` with ``keys`` and ``args`` in the next batch; return its reply.

        Args:
            script: the registered script.
            keys: its KEYS.
            args: its ARGV.
            replicas: how many replicas must hold the write before the reply counts.

        Raises:
            ServiceUnavailableError: Redis does not answer within `call_deadline`, or fewer
                than ``replicas`` replicas acknowledged the write.
            RedisError: the script failed.
        """
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Call(script, keys, args, replicas, reply))
        if self._sender is None:
            self._sender = loop.create_task(self._send())
            _background.add(self._sender)
            self._sender.add_done_callback(_forget)
        return await _await_bounded(reply, _Deadline.seconds)

    async def _send(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    replies, acks = await _translated(self._execute(batch), _BATCH_METRIC)
                except Exception as exc:  # every caller must hear of it, whatever it is
                    replies, acks = [exc] * len(batch), 0
                for call, value in zip(batch, replies, strict=True):
                    if call.reply.done():
                        continue
                    if not isinstance(value, Exception) and call.replicas > acks:
                        value = ServiceUnavailableError(
                            f"the write reached {acks} of {call.replicas} Redis replicas in time"
                        )
                    if isinstance(value, Exception):
                        call.reply.set_exception(_refused_write(value) or value)
                    else:
                        call.reply.set_result(value)
        finally:
            self._sender = None

    async def _execute(self, batch: list[_Call]) -> tuple[list[Any], int]:
        """Every call's reply, and how many replicas acknowledged the batch's writes."""
        wait = max(call.replicas for call in batch)
        replies, acks = await self._pipeline(batch, wait)
        if any(isinstance(value, NoScriptError) for value in replies):
            # a restarted Redis forgot the scripts: load them, then send what failed again
            for script in {call.script for call in batch}:
                await self._redis.script_load(script.script)
            again = [call for call, value in zip(batch, replies, strict=True)
                     if isinstance(value, NoScriptError)]  # fmt: skip
            retried_replies, retried_acks = await self._pipeline(again, wait)
            retried = iter(retried_replies)
            replies = [next(retried) if isinstance(value, NoScriptError) else value
                       for value in replies]  # fmt: skip
            acks = min(acks, retried_acks)
        return replies, acks

    async def _pipeline(self, batch: list[_Call], wait: int) -> tuple[list[Any], int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in batch:
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            if wait:
                pipe.execute_command("WAIT", wait, self._replica_timeout_ms)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        if not wait:
            return replies, 0
        acks = replies.pop()
        return replies, acks if isinstance(acks, int) else 0
