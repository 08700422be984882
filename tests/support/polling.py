"""Waiting for a condition: the one polling helper of the suite.

A test never sleeps for a fixed time to let something happen; it polls a condition with a deadline
and fails, naming what it waited for, when the deadline passes. `eventually` yields to the event
loop between polls and accepts a check that is a coroutine function (one reading Redis, say);
`eventually_sync` is the same loop for the synchronous end-to-end tests, which drive processes
with blocking clients and run no event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

Check = Callable[[], bool | Awaitable[bool]]
INTERVAL = 0.01


def _polls(timeout: float, what: str) -> Iterator[None]:
    """One step per poll until ``timeout`` seconds have passed, then fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        yield
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")


async def eventually(
    check: Check, timeout: float = 10.0, what: str = "the condition", interval: float = INTERVAL
) -> None:
    """Poll ``check`` (sync or async) until it holds, failing after ``timeout`` seconds."""
    for _ in _polls(timeout, what):
        outcome = check()
        if await outcome if inspect.isawaitable(outcome) else outcome:
            return
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], bool],
    timeout: float = 10.0,
    what: str = "the condition",
    interval: float = INTERVAL,
) -> None:
    """`eventually` for code without an event loop: blocks between polls."""
    for _ in _polls(timeout, what):
        if check():
            return
        time.sleep(interval)
