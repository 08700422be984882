"""The CPU the metrics add to one request, call by call, in this process (no server, no network).

    .venv/bin/python -m bench.metrics.hot_path [--calls 200000] [--repeats 7]

On a shared machine the servers' throughput moves by more than the few microseconds the metrics
cost (`bench.metrics.overhead`), so this times exactly the work they add, with `timeit`: the
middleware around a request that does nothing else, the counters the webhook intake and the job
listener update, and the timing of one storage call. Each figure is the best of ``--repeats``
runs (the least disturbed by other processes), in µs per call; the sums are what one
`GET /jobs/{id}` (the middleware and one storage call) and one webhook delivery that makes a job
(besides: the delivery counter, the intake stage, the new-job counter through the job listener,
and about 1.2 storage calls, as a run of the intake counts) add.
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections.abc import Callable, MutableMapping
from typing import Any

from raibid_api.jobs.job_metrics import count_job
from raibid_api.observability import metrics

STORAGE_CALLS_PER_DELIVERY = 1.2

Message = MutableMapping[str, Any]
_START: Message = {"type": "http.response.start", "status": 200, "headers": []}
_BODY: Message = {"type": "http.response.body", "body": b""}


class _Route:
    path = "/jobs/{job_id}"


_ROUTE = _Route()


async def _app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = _ROUTE
    await send(_START)
    await send(_BODY)


async def _send(message: Message) -> None:
    return None


async def _receive() -> Message:
    return {"type": "http.request"}


def _request(app: Any) -> Callable[[], None]:
    """One request through ``app`` on a loop, driven by hand (no scheduling in between)."""

    def run() -> None:
        scope = {"type": "http", "method": "GET", "path": "/jobs/x", "headers": []}
        step = app(scope, _receive, _send)
        try:
            step.send(None)
        except StopIteration:
            return

    return run


def best(call: Callable[[], object], calls: int, repeats: int) -> float:
    """The fastest of ``repeats`` runs of ``calls`` calls, in µs per call."""
    return min(timeit.repeat(call, number=calls, repeat=repeats)) / calls * 1e6


def main(argv: list[str] | None = None) -> None:
    """Time each piece, print them and the per-request sums."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    n, r = args.calls, args.repeats
    bare = best(_request(_app), n, r)
    wrapped = best(_request(metrics.HttpMetricsMiddleware(_app)), n, r)
    storage = metrics.RedisCall("JobStore.get")
    clock = time.perf_counter

    def timed_storage_call() -> None:
        started = clock()
        storage.observe(clock() - started)

    job = {"status": "pending", "attempt": 1, "event": "push"}

    def listener() -> None:
        step = count_job(job)
        try:
            step.send(None)
        except StopIteration:
            return

    pieces = {
        "middleware (request with it - without it)": wrapped - bare,
        "storage call timing": best(timed_storage_call, n, r),
        "webhook delivery counter": best(lambda: metrics.webhook_delivery("gitea", "push",
                                                                          "created"), n, r),
        "intake stage histogram": best(lambda: metrics.stage("webhook_to_queued", 0.004), n, r),
        "job listener, new job": best(listener, n, r),
    }  # fmt: skip
    for name, micros in pieces.items():
        print(f"{name:45s} {micros:6.2f} µs")
    get = pieces["middleware (request with it - without it)"] + pieces["storage call timing"]
    hook = (
        get - pieces["storage call timing"]
        + STORAGE_CALLS_PER_DELIVERY * pieces["storage call timing"]
        + pieces["webhook delivery counter"] + pieces["intake stage histogram"]
        + pieces["job listener, new job"]
    )  # fmt: skip
    print(f"{'one GET /jobs/{id}':45s} {get:6.2f} µs")
    print(f"{'one webhook delivery that makes a job':45s} {hook:6.2f} µs")


if __name__ == "__main__":
    main()
