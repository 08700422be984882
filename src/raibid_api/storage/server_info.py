"""What the Redis server says about itself at start-up, and the warnings it calls for.

An evicting ``maxmemory-policy`` may drop the queue or a job under memory pressure; with fewer
replicas than ``redis.min_replica_acks`` every webhook goes to the disk spool. Neither stops the
server: each is one warning line, and docs/operations.md says what to set.
"""

from __future__ import annotations

from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from raibid_api.errors import ServiceUnavailableError
from raibid_api.storage.connection import shielded

_log = structlog.get_logger("raibid_api.storage")


@shielded
async def _info(redis: Redis) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for section in ("memory", "replication"):
        found |= await redis.info(section)
    return found


def redis_warnings(info: dict[str, Any], replica_acks: int) -> list[str]:
    """The warnings ``info`` (``INFO memory`` and ``replication``) calls for."""
    warnings = []
    policy = str(info.get("maxmemory_policy", "noeviction"))
    if policy != "noeviction":
        warnings.append(
            f"redis maxmemory-policy is {policy}: under memory pressure Redis may evict the "
            "queue or a job; set maxmemory-policy noeviction"
        )
    replicas = int(info.get("connected_slaves", 0))
    if replicas < replica_acks:
        warnings.append(
            f"redis has {replicas} connected replicas and redis.min_replica_acks is "
            f"{replica_acks}: webhooks go to the disk spool until enough replicas acknowledge"
        )
    return warnings


async def warn_about_redis(redis: Redis, replica_acks: int) -> None:
    """Log a warning for each setting of the Redis server that puts jobs at risk."""
    try:
        info = await _info(redis)
    except (RedisError, ServiceUnavailableError) as exc:  # INFO may be renamed away
        _log.info("redis did not describe itself", error=type(exc).__name__)
        return
    for warning in redis_warnings(info, replica_acks):
        _log.warning(warning)
