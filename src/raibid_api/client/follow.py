"""Following a job's log to its end over the per-job SSE stream, across dropped connections.

Each event carries its stream entry id; after a dropped connection (or a stream the server ended
without ``end``, at its shutdown) the follower reconnects with ``Last-Event-ID`` set to the last
entry it handed on, and the server sends exactly the entries after it: no gap, no repeat. An
event is handed on only once it arrived whole (the SSE decoder yields complete events only).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from raibid_api.client.exits import UNREACHABLE
from raibid_api.client.http import ApiClient, ClientError, Job, unreachable


@dataclass(frozen=True)
class Retry:
    """How to keep reconnecting after a dropped connection.

    At once, then after ``first`` s, doubling up to ``longest``, until ``budget`` s of failures
    in a row; any event that arrives starts the count again.
    """

    first: float = 0.2
    longest: float = 5.0
    budget: float = 120.0


@dataclass
class _Position:
    last_id: str | None = None
    ever_opened: bool = False
    opened_at: float | None = None  # of the stream open now, if any
    failing_since: float | None = None
    delay: float = 0.0


def follow(
    client: ApiClient,
    job_id: str,
    on_log: Callable[[dict[str, str]], None],
    on_status: Callable[[Job], None],
    retry: Retry | None = None,
) -> Job:
    """Hand on every log line and status change of the job until it ends; return the final job.

    Raises:
        ClientError: the server refused the stream (unknown job, bad token), could not be
            reached at first, or not again for ``retry.budget`` seconds in a row.
    """
    retry = retry or Retry()
    at = _Position()
    while True:
        try:
            with client.log_stream(job_id, at.last_id) as source:
                at.ever_opened = True
                at.opened_at = time.monotonic()
                for event in source.iter_sse():
                    if event.event == "end":
                        final: Job = json.loads(event.data)
                        return final
                    if _hand_on(event.event, event.data, on_log, on_status):
                        at.last_id = event.id or at.last_id
                        at.failing_since = None
                        at.delay = 0.0
        except httpx.TransportError as exc:
            if not at.ever_opened:  # no server there at all: say so at once
                raise unreachable(client.base_url, exc) from None
            _wait_before_retrying(at, retry, unreachable(client.base_url, exc))
        except ClientError as exc:
            # a 5xx while the server comes back (Redis not ready yet) is worth another try;
            # a refusal (unknown job, bad token) is not
            if not at.ever_opened or exc.exit_code != UNREACHABLE:
                raise
            _wait_before_retrying(at, retry, exc)
        else:
            # the server ended the stream without `end` (a shutdown): resume, at once the first time
            _wait_before_retrying(at, retry, _ended_early(client.base_url))


def _hand_on(
    kind: str, data: str, on_log: Callable[[dict[str, str]], None],
    on_status: Callable[[Job], None],
) -> bool:  # fmt: skip
    """Hand one event on; whether it was an entry of the job's stream."""
    if kind == "log":
        on_log(json.loads(data))
    elif kind == "status":
        on_status(json.loads(data))
    elif kind == "gap":
        # entries the server no longer keeps (big logs): a marker where they were
        dropped = json.loads(data).get("dropped")
        on_log({"line": f"[… {dropped if dropped is not None else 'some'} lines dropped …]"})
    else:
        return False
    return True


def _ended_early(url: str) -> ClientError:
    return unreachable(url, ConnectionError("the stream keeps ending before the job does"))


def _wait_before_retrying(at: _Position, retry: Retry, error: ClientError) -> None:
    now = time.monotonic()
    if at.opened_at is not None and now - at.opened_at > retry.longest:
        at.failing_since = None  # a quiet stream that lived a while: this failure starts afresh
    at.opened_at = None
    if at.failing_since is None:
        at.failing_since = now
    elif now - at.failing_since > retry.budget:
        raise error
    time.sleep(at.delay)
    at.delay = min(retry.longest, max(retry.first, at.delay * 2))
