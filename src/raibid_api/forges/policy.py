"""The timings of commit status reporting: backoff, leases, and how often the sweep looks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportingPolicy:
    """Every timing of the outbox worker and the sweep, in milliseconds unless named otherwise.

    With the defaults a report is tried 12 times over about 24 minutes (2 s, 4 s, 8 s, ...
    doubling up to 5 min between tries) before it is given up; a final state given up is queued
    again by the sweep every 15 minutes until the forge takes it or the job expires.
    """

    backoff_base_ms: int = 2_000
    backoff_cap_ms: int = 300_000
    max_attempts: int = 12
    busy_delay_ms: int = 1_000  # another replica is sending a report of the same job
    lease_ms: int = 30_000  # how long a send may hold its job (longer than the HTTP timeout)
    claim_idle_ms: int = 60_000  # a report read this long ago and not settled: its reader died
    batch: int = 16  # reports sent at once by one replica
    poll_ms: int = 1_000  # longest wait for new reports (retries are promoted this often)
    final_deadline_ms: int = 3_600_000  # a final state not acknowledged by then is queued again
    gave_up_look_again_ms: int = 900_000  # how soon a final state given up is queued again
    sweep_interval_s: float = 60.0
    reconcile_window_ms: int = 3 * 3_600_000  # ended jobs created this recently are checked
    consumer_forget_ms: int = 86_400_000  # idle consumers holding nothing are removed after
    http_timeout_s: float = 10.0

    def backoff_ms(self, attempt: int, retry_after_s: float | None = None) -> int:
        """How long to wait after try number ``attempt`` failed; a longer Retry-After wins.

        The wait doubles from ``backoff_base_ms`` with each try and never exceeds
        ``backoff_cap_ms``, not even when the forge asks for more.
        """
        wait = self.backoff_base_ms << min(max(attempt - 1, 0), 30)
        if retry_after_s is not None:
            wait = max(wait, int(retry_after_s * 1000))
        return min(wait, self.backoff_cap_ms)
