"""Every key under a prefix with its content, to show that a call wrote nothing.

Content rather than ``DUMP``: a hash or set in Redis's hashtable encoding may serialize its
members in another order after a mere read (incremental rehashing), with nothing changed.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

KeyState = dict[Any, tuple[object, int]]
"""Key -> (its content, its time to live in ms or a negative number without one)."""


async def key_state(redis: Redis, prefix: str) -> KeyState:
    """Every key matching ``<prefix>*``: its content and its time to live."""
    state: KeyState = {}
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        state[key] = (await _content(redis, key), await redis.pttl(key))
    return state


async def _content(redis: Redis, key: Any) -> object:
    kind = await redis.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        return await redis.get(key)
    if kind == "hash":
        return await redis.hgetall(key)
    if kind == "zset":
        return await redis.zrange(key, 0, -1, withscores=True)
    if kind == "set":
        return sorted(await redis.smembers(key))
    if kind == "list":
        return await redis.lrange(key, 0, -1)
    if kind == "stream":
        groups = await redis.xinfo_groups(key)
        return await redis.xrange(key), await redis.xinfo_stream(key), groups
    raise AssertionError(f"{key!r} is a {kind}, which key_state does not read")


def assert_unchanged(before: KeyState, after: KeyState) -> None:
    """The same keys with the same content, and no time to live set or pushed back."""
    assert after.keys() == before.keys()
    for key, (content, ttl) in after.items():
        old_content, old_ttl = before[key]
        assert content == old_content, key
        assert (ttl < 0) == (old_ttl < 0), key
        assert ttl <= old_ttl, key
