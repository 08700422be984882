"""Rate limits as the domain states them: who is counted, how many a minute, and the refusal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from raibid_api.errors import RateLimitedError

RATE_WINDOW_MS = 60_000
"""The sliding window every limit counts over."""


@dataclass(frozen=True)
class RateLimit:
    """Counts a request against each subject's sliding one-minute log, unless one is full."""

    what: str
    """What is counted, for the refusal's message (``webhook deliveries``)."""
    subjects: Sequence[tuple[str, str]]
    """``(scope, subject)`` pairs, e.g. ``("source", "10.0.0.1")``."""
    per_minute: int

    def refused(self, index: int, retry_after_ms: int) -> RateLimitedError:
        """The error for a request that subject ``index`` (1-based) refused."""
        scope = self.subjects[index - 1][0]
        return RateLimitedError(
            f"too many {self.what} for this {scope}; the limit is {self.per_minute} a minute",
            retry_after=max(1, math.ceil(retry_after_ms / 1000)),
        )
