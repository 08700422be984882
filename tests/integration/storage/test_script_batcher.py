"""ScriptBatcher: script calls arriving together share one pipeline, each with its own answer."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from raibid_api.errors import ServiceUnavailableError
from raibid_api.storage.connection import ScriptBatcher

ECHO = "if ARGV[1] == 'fail' then return redis.error_reply('asked to fail') end return ARGV[1]"


class CountingBatcher(ScriptBatcher):
    """Records the size of every pipeline it sends."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self.sizes: list[int] = []

    async def _pipeline(self, batch: list[Any], wait: int) -> tuple[list[Any], int]:
        self.sizes.append(len(batch))
        return await super()._pipeline(batch, wait)


async def test_calls_arriving_together_share_pipelines_and_each_gets_its_reply(
    redis: Redis,
) -> None:
    batcher = CountingBatcher(redis)
    echo = redis.register_script(ECHO)
    await redis.script_load(ECHO)

    replies = await asyncio.gather(*(batcher.call(echo, [], [f"n{i}"]) for i in range(50)))

    assert replies == [f"n{i}" for i in range(50)]
    assert sum(batcher.sizes) == 50
    assert len(batcher.sizes) < 50


async def test_a_script_redis_forgot_is_loaded_again_and_the_call_answered(redis: Redis) -> None:
    batcher = CountingBatcher(redis)
    echo = redis.register_script(ECHO)
    await redis.script_flush()

    replies = await asyncio.gather(*(batcher.call(echo, [], [f"n{i}"]) for i in range(5)))

    assert replies == [f"n{i}" for i in range(5)]
    assert await redis.script_exists(echo.sha) == [True]


async def test_a_failing_script_fails_only_its_own_caller(redis: Redis) -> None:
    batcher = ScriptBatcher(redis)
    echo = redis.register_script(ECHO)
    await redis.script_load(ECHO)

    replies = await asyncio.gather(
        batcher.call(echo, [], ["a"]), batcher.call(echo, [], ["fail"]),
        batcher.call(echo, [], ["b"]), return_exceptions=True,
    )  # fmt: skip

    assert replies[0] == "a"
    assert replies[2] == "b"
    assert isinstance(replies[1], ResponseError)
    assert "asked to fail" in str(replies[1])


async def test_a_cancelled_caller_leaves_the_batch_and_later_calls_whole(redis: Redis) -> None:
    batcher = ScriptBatcher(redis)
    echo = redis.register_script(ECHO)
    await redis.script_load(ECHO)
    calls = [asyncio.ensure_future(batcher.call(echo, [], [f"n{i}"])) for i in range(20)]
    await asyncio.sleep(0)
    for call in calls[::2]:
        call.cancel()

    results = await asyncio.gather(*calls, return_exceptions=True)

    for i, result in enumerate(results):
        if i % 2:
            assert result == f"n{i}"
        else:
            assert isinstance(result, asyncio.CancelledError)
    assert await batcher.call(echo, [], ["after"]) == "after"


async def test_a_call_no_replica_acknowledged_in_time_fails_and_the_others_answer(
    redis: Redis,
) -> None:
    # the test's Redis has no replica: WAIT answers 0 once its timeout passes
    batcher = ScriptBatcher(redis, replica_timeout_ms=50)
    echo = redis.register_script(ECHO)
    await redis.script_load(ECHO)

    replies = await asyncio.gather(
        batcher.call(echo, [], ["safe?"], replicas=1), batcher.call(echo, [], ["plain"]),
        return_exceptions=True,
    )  # fmt: skip

    assert isinstance(replies[0], ServiceUnavailableError)
    assert "0 of 1" in replies[0].message
    assert replies[1] == "plain"
