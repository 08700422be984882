"""Liveness and readiness: the process is up; its dependencies answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Check = Callable[[], Awaitable[object]]


class HealthChecks:
    """Named readiness checks, each bounded by a timeout, run together."""

    def __init__(self, timeout: float = 2.0) -> None:
        self._started = time.monotonic()
        self._checks: dict[str, Check] = {}
        self._timeout = timeout

    def add(self, name: str, check: Check) -> None:
        """Make ``check`` (which raises when its dependency is down) part of readiness."""
        self._checks[name] = check

    def uptime(self) -> float:
        """Seconds since the process started serving."""
        return round(time.monotonic() - self._started, 3)

    async def _run(self, check: Check) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                await check()
        except TimeoutError:
            return f"no answer within {self._timeout:g}s"
        except Exception as exc:  # any failure means not ready; its type says why
            return f"failed: {type(exc).__name__}"
        return "ok"

    async def readiness(self, skip: frozenset[str] = frozenset()) -> dict[str, str]:
        """Each check's outcome (but those named in ``skip``): ``ok`` or why not."""
        names = [name for name in self._checks if name not in skip]
        results = await asyncio.gather(*(self._run(self._checks[n]) for n in names))
        return dict(zip(names, results, strict=True))
