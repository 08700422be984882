"""Load: wrk for closed-loop throughput, and a constant-rate generator for latency at a fixed rate.

Closed loop (`run_wrk`): wrk keeps ``connections`` requests in flight and reports how many it got
through; its Lua script adds the Authorization header, cycles through the given paths, and prints
its summary as one JSON line.

Constant rate (`run_constant_rate`): wrk2's method in Python (this machine has wrk, not wrk2).
Each of ``connections`` keep-alive connections sends at its own fixed schedule, so together they
send ``rate`` requests a second. A request whose turn comes while its connection still waits for
the previous answer is sent late, and its latency counts from when it should have been sent
(no coordinated omission). When the connection was free, latency counts from the actual send,
so the event loop's millisecond timer granularity is not charged to the server.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import percentile

WRK_MARK = "BENCH_JSON "
_WRK_SCRIPT = """
local paths = {%(paths)s}
local i = 0
%(headers)s
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Sample:
    """One measurement of one target: throughput, latency (ms), and failures."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    failures: int
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII text is a valid Lua string literal


def wrk_script(paths: Sequence[str], headers: Mapping[str, str]) -> str:
    """The wrk Lua script that cycles through ``paths`` with ``headers`` on every request."""
    return _WRK_SCRIPT % {
        "paths": ", ".join(_lua_string(p) for p in paths),
        "headers": "\n".join(
            f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()
        ),
        "mark": WRK_MARK,
    }


def run_wrk(
    base_url: str,
    paths: Sequence[str],
    headers: Mapping[str, str],
    *,
    duration: float,
    connections: int,
    threads: int = 1,
) -> Sample:
    """Closed-loop load with wrk; raises if wrk printed no summary."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(paths, headers))
    try:
        done = subprocess.run(
            [
                "wrk",
                *f"-t{threads} -c{connections} -d{duration:.0f}s --timeout 5s".split(),
                "-s",
                script.name,
                base_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(script.name).unlink()
    line = next((x for x in done.stdout.splitlines() if x.startswith(WRK_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix(WRK_MARK))
    failures = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Sample(
        requests=data["requests"] - data["status"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        failures=failures,
    )


@dataclass
class _Tally:
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    late_sends: int = 0
    last_answer: float = 0.0


def _request_bytes(host: str, path: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise RuntimeError("a response without Content-Length")
    await reader.readexactly(length)
    return status


@dataclass(frozen=True)
class _Plan:
    host: str
    port: int
    requests: Sequence[bytes]
    rate: float
    connections: int
    start: float
    measure_from: float
    end: float


async def _connection(plan: _Plan, index: int, tally: _Tally) -> None:
    reader, writer = await asyncio.open_connection(plan.host, plan.port)
    interval = plan.connections / plan.rate
    due = plan.start + index / plan.rate
    turn = index
    try:
        while due < plan.end:
            now = time.perf_counter()
            if now < due:
                await asyncio.sleep(due - now)
                sent_at = time.perf_counter()
            else:
                sent_at = due  # the connection was still busy: the wait counts
                if now - due > 0.002:
                    tally.late_sends += due >= plan.measure_from
            writer.write(plan.requests[turn % len(plan.requests)])
            status = await _read_response(reader)
            if due >= plan.measure_from:
                tally.latencies_ms.append((time.perf_counter() - sent_at) * 1000)
                tally.failures += status != 200
                tally.last_answer = max(tally.last_answer, time.perf_counter())
            due += interval
            turn += plan.connections
    finally:
        writer.close()


async def run_constant_rate(
    base: tuple[str, int],
    paths: Sequence[str],
    headers: Mapping[str, str],
    *,
    rate: float,
    duration: float,
    connections: int = 16,
    warmup: float = 1.0,
) -> Sample:
    """Send ``rate`` requests/s for ``warmup + duration`` s; measure the last ``duration`` s.

    The rate reported is what was answered over the time it took: below ``rate`` when the target
    could not keep up (the run then lasts until every request due was answered).
    """
    host, port = base
    start = time.perf_counter() + 0.05
    plan = _Plan(
        host, port, [_request_bytes(host, p, headers) for p in paths], rate, connections,
        start, start + warmup, start + warmup + duration,
    )  # fmt: skip
    tally = _Tally()
    await asyncio.gather(*(_connection(plan, i, tally) for i in range(connections)))
    lat = tally.latencies_ms
    return Sample(
        requests=len(lat) - tally.failures,
        seconds=max(tally.last_answer - plan.measure_from, duration),
        p50_ms=percentile(lat, 50),
        p99_ms=percentile(lat, 99),
        max_ms=max(lat, default=float("nan")),
        failures=tally.failures,
        extra={"late_sends": float(tally.late_sends), "p999_ms": percentile(lat, 99.9)},
    )
