"""Keeping a claimed job's lease: one heartbeat always open, answered by the server on a cancel.

Also the one other call an agent makes about its job while it runs: telling the server the commit
a branch was checked out at.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import structlog

from raibid_api.agent.client import (
    AgentClient,
    AgentProtocolError,
    ClaimedJob,
    LeaseLostError,
)
from raibid_api.errors import ServiceUnavailableError

logger = structlog.get_logger()


@dataclass
class JobState:
    """What the watchers of a running job found: stop it (``cancel``), and why."""

    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    lease_lost: bool = False
    shut_down: bool = False


async def keep_lease(
    client: AgentClient, claimed: ClaimedJob, interval: float, state: JobState
) -> None:
    """Heartbeat until the job is cancelled or lost; sets ``state.cancel`` then.

    Each heartbeat is held by the server for ``interval`` seconds, or less when the job stops
    running, and the next one goes out at once: the lease is extended every ``interval`` seconds
    and a cancel arrives within moments.
    """
    while True:
        sent = time.monotonic()
        try:
            cancelled = await client.heartbeat(
                claimed.job_id, claimed.token, wait=interval, deadline=2 * interval
            )
        except LeaseLostError:
            state.lease_lost = True
            state.cancel.set()
            return
        except ServiceUnavailableError as exc:
            logger.warning("heartbeat_failed", job_id=claimed.job_id, error=exc.message)
            continue
        except AgentProtocolError as exc:  # keep beating: the lease is what keeps the job
            logger.error("heartbeat_refused", job_id=claimed.job_id, error=exc.message)
            cancelled = False
        if cancelled:
            state.cancel.set()
            return
        # a server that does not hold heartbeats answers at once: keep to the period then
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - sent)))


async def record_commit(client: AgentClient, claimed: ClaimedJob, commit: str) -> None:
    """Tell the server the commit the job's ref was checked out at; a failure is only logged."""
    try:
        await client.record_commit(claimed.job_id, claimed.token, commit)
    except (LeaseLostError, ServiceUnavailableError, AgentProtocolError) as exc:
        # the build goes on; a lost lease is the heartbeat's to notice
        logger.warning("commit_not_recorded", job_id=claimed.job_id, error=exc.message)
