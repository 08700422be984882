"""Shipping one job's log lines to the server in order, in batches, at most ~100 ms behind.

A line leaves the shipper's buffer only when the server acknowledged the batch holding it, and
every batch names the offset of its first line, so a batch retried after a lost answer or a
server restart is neither lost nor doubled nor reordered: the server skips lines it already holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from types import TracebackType

import structlog

from raibid_api.agent.client import (
    AgentClient,
    AgentProtocolError,
    LeaseLostError,
    LogOffsetGapError,
)
from raibid_api.agent.processes import Stream
from raibid_api.errors import PayloadTooLargeError, ServiceUnavailableError

logger = structlog.get_logger()

_LINE_OVERHEAD = 32  # JSON punctuation and the stream name around each line


class LogShipper:
    """Buffers one job's lines and sends them in order; `put` is the runner's line sink.

    Args:
        client: the agent's HTTP client.
        job_id: the job the lines belong to.
        token: the job token.
        offset: the log offset of the first line this shipper will send.
        max_delay: seconds a line may wait for companions before its batch leaves.
        max_batch_lines: the most lines in one request.
        max_batch_bytes: the most line bytes in one request (the server bounds body size).
        max_pending: lines buffered before `put` waits, which stalls the step's output pipes.
    """

    def __init__(
        self,
        client: AgentClient,
        job_id: str,
        token: str,
        *,
        offset: int = 0,
        max_delay: float = 0.1,
        max_batch_lines: int = 1000,
        max_batch_bytes: int = 512 * 1024,
        max_pending: int = 100_000,
    ) -> None:
        self._client = client
        self._job_id = job_id
        self._token = token
        self._max_delay = max_delay
        self._batch_lines = max_batch_lines
        self._max_batch_bytes = max_batch_bytes
        self._max_pending = max_pending
        self._pending: deque[tuple[Stream, str, int]] = deque()
        self._since = 0.0
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.offset = offset
        self.lease_lost = False

    async def __aenter__(self) -> LogShipper:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.abandon()

    @property
    def unsent(self) -> int:
        """Lines not yet acknowledged by the server."""
        return len(self._pending)

    def start(self) -> None:
        """Start sending in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"log-shipper-{self._job_id}")

    async def put(self, stream: Stream, line: str) -> None:
        """Queue one line; waits while the buffer is full (the server is unreachable)."""
        while len(self._pending) >= self._max_pending and not self.lease_lost:
            self._space.clear()
            await self._space.wait()
        if self.lease_lost:
            return
        if not self._pending:
            self._since = time.monotonic()
        self._pending.append((stream, line, len(line.encode()) + _LINE_OVERHEAD))
        self._wake.set()

    async def close(self, within: float = 30.0) -> bool:
        """Send every buffered line within ``within`` seconds; True when all were acknowledged."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            return not self._pending
        try:
            await asyncio.wait_for(asyncio.shield(self._task), within)
        except TimeoutError:
            logger.warning("log_lines_unsent", job_id=self._job_id, lines=len(self._pending))
            await self.abandon()
        return not self._pending

    async def abandon(self) -> None:
        """Stop sending at once; buffered lines are dropped."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._pending or not self._closing:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._linger()
            await self._ship_batch()
            if self.lease_lost:
                return

    async def _linger(self) -> None:
        """Wait until the oldest line is ``max_delay`` old, the batch is full, or closing."""
        while not self._closing and len(self._pending) < self._batch_lines:
            left = self._since + self._max_delay - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    async def _ship_batch(self) -> None:
        batch = self._next_batch()
        try:
            await self._client.send_logs(self._job_id, self._token, self.offset, batch)
        except LogOffsetGapError as gap:
            self._rebase(gap.expected_offset)
        except PayloadTooLargeError:
            self._batch_lines = max(1, len(batch) // 2)
        except ServiceUnavailableError as exc:
            # Keep every line; the client already backed off, so just go round again.
            logger.warning("log_shipping_stalled", job_id=self._job_id, error=exc.message)
        except LeaseLostError:
            self._give_up("lease_lost")
        except AgentProtocolError as exc:
            logger.error("log_batch_refused", job_id=self._job_id, error=exc.message)
            self._acknowledge(len(batch), stored=False)
        else:
            self._acknowledge(len(batch), stored=True)

    def _next_batch(self) -> list[dict[str, str]]:
        batch: list[dict[str, str]] = []
        size = 0
        for stream, line, cost in self._pending:
            if len(batch) >= self._batch_lines or (batch and size + cost > self._max_batch_bytes):
                break
            batch.append({"line": line, "stream": stream})
            size += cost
        return batch

    def _acknowledge(self, count: int, *, stored: bool) -> None:
        for _ in range(count):
            self._pending.popleft()
        if stored:
            self.offset += count
        # Lines that arrived while the batch was in flight have waited long enough already.
        self._since = 0.0
        self._space.set()

    def _rebase(self, expected: int) -> None:
        if expected >= self.offset:
            self._acknowledge(min(expected - self.offset, len(self._pending)), stored=True)
            self.offset = expected
            return
        # The server lost lines it had acknowledged (a Redis failover): say so where they were.
        lost = self.offset - expected
        logger.warning("log_lines_lost_by_server", job_id=self._job_id, lines=lost)
        note = f"[raibid] the server lost {lost} log lines here"
        self._pending.appendleft(("stderr", note, len(note) + _LINE_OVERHEAD))
        self.offset = expected

    def _give_up(self, why: str) -> None:
        logger.warning("log_shipping_stopped", job_id=self._job_id, reason=why, lines=self.unsent)
        self.lease_lost = True
        self._pending.clear()
        self._space.set()
