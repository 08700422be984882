"""The Redis client: a bounded connection pool, and calls that survive the caller's cancellation.

redis.asyncio leaks a pooled connection (or worse, hands the next caller a reply meant for another)
when a task is cancelled in the middle of a command: a client that disconnects, an
``asyncio.timeout``. So no cancellation may land inside a pooled call: `shielded` runs each storage
operation as its own task that the caller's cancellation does not reach. The operation still ends,
because every socket read is bounded by ``socket_timeout``, and its connection returns to the pool.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from raibid_api.config import RedisSettings
from raibid_api.errors import ServiceUnavailableError
from raibid_api.observability.metrics import RedisCall

RedisClient = Redis
"""The client type the rest of the server is handed (only storage/ imports redis)."""

P = ParamSpec("P")
T = TypeVar("T")

_background: set[asyncio.Task[Any]] = set()


def _forget(task: asyncio.Task[Any]) -> None:
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


def shielded(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Awaitable[T]]:
    """Run a storage operation so that cancelling the caller never interrupts its Redis calls.

    Redis failures become `ServiceUnavailableError`, which the API answers with 503. Each call
    is timed, and its failures counted, under the operation's name (``JobStore.get``).
    """
    metric = RedisCall(fn.__qualname__)

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        task = asyncio.ensure_future(_translated(fn(*args, **kwargs), metric))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            _background.add(task)
            task.add_done_callback(_forget)
            raise

    return run


async def _translated(call: Coroutine[Any, Any, T], metric: RedisCall) -> T:
    started = time.perf_counter()
    try:
        return await call
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        metric.failed("unavailable")
        raise ServiceUnavailableError(f"Redis is unavailable: {type(exc).__name__}") from exc
    except RedisError as exc:
        if "LOADING" in str(exc) or "READONLY" in str(exc):
            metric.failed("unavailable")
            raise ServiceUnavailableError("Redis is not ready to serve writes") from exc
        metric.failed("error")
        raise
    finally:
        metric.observe(time.perf_counter() - started)


def create_redis(url: str, settings: RedisSettings, *, blocking: bool = False) -> RedisClient:
    """A client with a bounded pool: waits up to ``pool_timeout`` for a free connection.

    Args:
        url: the Redis URL (may carry a password; never logged).
        settings: timeouts and pool size.
        blocking: a client for blocking reads (`XREAD BLOCK`); no socket timeout cuts them.
    """
    socket_timeout = settings.socket_timeout.total_seconds()
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.max_connections,
        timeout=settings.pool_timeout.total_seconds(),
        socket_timeout=None if blocking else socket_timeout,
        socket_connect_timeout=settings.connect_timeout.total_seconds(),
        socket_keepalive=True,
        health_check_interval=30,
        decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.01), 2),
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections


_BATCH_METRIC = RedisCall("ScriptBatcher.batch")
_Call = tuple[AsyncScript, list[Any], list[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    """Runs script calls that arrive together as one pipeline: one round trip for many.

    A call waits in a queue that one task at a time sends (``EVALSHA`` each, not a
    transaction: every script is atomic on its own); the next batch forms while one is in
    flight. Under load many deliveries share a round trip, the socket writes and reads, and a
    pooled connection; alone, a call costs what a direct one does. The sending task is not the
    caller's, so a caller's cancellation never interrupts a Redis call (see `shielded`).
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._queue: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None

    async def call(self, script: AsyncScript, keys: list[Any], args: list[Any]) -> Any:
        """Run ``script`` with ``keys`` and ``args`` in the next batch; return its reply.

        Raises:
            ServiceUnavailableError: Redis does not answer.
            RedisError: the script failed.
        """
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._queue.append((script, keys, args, reply))
        if self._sender is None:
            self._sender = loop.create_task(self._send())
            _background.add(self._sender)
            self._sender.add_done_callback(_forget)
        return await reply

    async def _send(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    replies = await _translated(self._execute(batch), _BATCH_METRIC)
                except Exception as exc:  # every caller must hear of it, whatever it is
                    replies = [exc] * len(batch)
                for (_, _, _, reply), value in zip(batch, replies, strict=True):
                    if reply.done():
                        continue
                    if isinstance(value, Exception):
                        reply.set_exception(value)
                    else:
                        reply.set_result(value)
        finally:
            self._sender = None

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        replies = await self._pipeline(batch)
        if any(isinstance(value, NoScriptError) for value in replies):
            # a restarted Redis forgot the scripts: load them, then send what failed again
            for script in {script for script, _, _, _ in batch}:
                await self._redis.script_load(script.script)
            again = [call for call, value in zip(batch, replies, strict=True)
                     if isinstance(value, NoScriptError)]  # fmt: skip
            retried = iter(await self._pipeline(again))
            replies = [next(retried) if isinstance(value, NoScriptError) else value
                       for value in replies]  # fmt: skip
        return replies

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for script, keys, args, _ in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies
