"""One process of SSE clients: raw sockets, each following a stream to its `end`.

    python -m bench.logs.clients --port P --token T --count 250 --out result.json PATH [PATH ...]

Client ``i`` opens ``PATHS[i % len(PATHS)]``. It prints ``READY`` once every client got its first
event (after the `retry:` hint), and writes when they are all done (or ``--deadline`` passed):
how many log lines each client received, whether it got `end`, and a histogram of line latency
in milliseconds (posted → received) over the lines that carry their posting time
(``T<epoch seconds>``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_STAMP = re.compile(rb"T(\d{10}\.\d{1,9})")
_LOG = b"event: log\n"
_END = b"event: end\n"


@dataclass
class _Client:
    lines: int = 0
    ended: bool = False
    error: str | None = None
    latencies: Counter[int] = field(default_factory=Counter)


async def _follow(port: int, path: str, token: str, state: _Client, first: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    writer.write(request.encode())
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            state.error = head.split(b"\r\n", 1)[0].decode()
            first.set()
            return
        pending = b""
        while not state.ended:
            data = await reader.read(2**20)
            if not data:
                break
            now = time.time()
            pending += data
            cut = pending.rfind(b"\n\n")
            if cut < 0:
                continue
            done, pending = pending[: cut + 2], pending[cut + 2 :]
            if b"event: " in done:
                first.set()  # its stream has begun (past the `retry:` hint)
            state.lines += done.count(_LOG)
            for stamp in _STAMP.findall(done):
                state.latencies[int((now - float(stamp)) * 1000)] += 1
            state.ended = _END in done
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        state.error = repr(exc)
    finally:
        first.set()
        writer.close()


async def _main(args: argparse.Namespace) -> dict[str, object]:
    states = [_Client() for _ in range(args.count)]
    firsts = [asyncio.Event() for _ in range(args.count)]
    tasks = [
        asyncio.create_task(
            _follow(args.port, args.paths[i % len(args.paths)], args.token, states[i], firsts[i])
        )
        for i in range(args.count)
    ]
    await asyncio.gather(*(event.wait() for event in firsts))
    print("READY", flush=True)
    _, late = await asyncio.wait(tasks, timeout=args.deadline)
    for task in late:
        task.cancel()
    histogram: Counter[int] = Counter()
    for state in states:
        histogram.update(state.latencies)
    return {
        "lines": [s.lines for s in states],
        "ended": sum(s.ended for s in states),
        "errors": [s.error for s in states if s.error][:5],
        "latency_ms": {str(k): v for k, v in histogram.items()},
    }


def main(argv: list[str] | None = None) -> None:
    """Run the clients."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--deadline", type=float, default=600.0)
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    Path(args.out).write_text(json.dumps(asyncio.run(_main(args))))


if __name__ == "__main__":
    main(sys.argv[1:])
