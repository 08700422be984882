"""The webhook load generator: real recorded payloads, signed anew under a fresh commit each.

Every request is a distinct push or pull request (its commit sha replaced everywhere in the
payload, so content coalescing never folds two into one job) with a fresh delivery id and a
correct HMAC, built as it is sent. The client is a bare HTTP/1.1 keep-alive client on asyncio
streams (`_Connection`: write the request, read the status line, headers and Content-Length
body), so its own cost per request stays small next to the server's. Two ways to drive it:

Closed loop (`run_load`, the throughput phase): a fixed number of connections, each sending its
next request as soon as the last answer is read. It finds the most the server takes; its
latencies are mostly queueing at that saturation, and each counts from its own send.

Open loop (`run_rate`, the latency phase): deliveries at a constant rate, delivery ``i`` due at
``start + i / rate`` whatever became of the ones before it, from a pool of keep-alive
connections (8 opened before the clock starts, up to 64): each due delivery takes the next idle
connection, or a new one while fewer than the cap are open, or else waits for an answer to free
one; those that found none idle are counted late. Latency counts from when the delivery was
due, not from when it went out, so a slow answer that holds later ones back is charged to the
server (no coordinated omission); only when the event loop's millisecond timer wakes a little
early does it count from the (earlier) send. How far the generator itself fell behind the
schedule (timer, event loop, scheduler) is recorded apart, as the floor under those latencies.
The run sends ``round(rate * seconds)`` deliveries and waits at most 10 s past the schedule for
the last answers; any still missing then count as status 0.

`python -m bench.webhooks.run` runs both: ``--connections`` and ``--seconds`` for the closed
loop, ``--rate`` and ``--rate-seconds`` for the open loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from bench.common import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "webhooks"  # the recorded payloads the tests use


@dataclass(frozen=True)
class Template:
    """A recorded payload and how its forge delivers it."""

    forge: str
    event: str
    body: bytes
    commit: bytes

    @classmethod
    def load(cls, forge: str, event: str, name: str, commit: str) -> Template:
        """The fixture ``name``, whose commit ``commit`` is replaced in every request."""
        body = (FIXTURES / name).read_bytes()
        if commit.encode() not in body:
            raise ValueError(f"{name} does not hold commit {commit}")
        return cls(forge, event, body, commit.encode())


# 5.6 KB, 8.8 KB and 11.9 KB: a Gitea push, a GitHub push, a Gitea pull request from a fork.
TEMPLATES = (
    Template.load("gitea", "push", "gitea/push-1.json", "29be01c073851cf0db0c6a466e396b725a670453"),
    Template.load(
        "github", "push", "github/push-1.json", "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    ),
    Template.load(
        "gitea",
        "pull_request",
        "gitea/pull_request-1.json",
        "48e773f892a831faa47c0a160d1b7f0cd369ae2a",
    ),
)


def build_request(template: Template, n: int, secret: bytes, run: str) -> bytes:
    """Request ``n`` of a run: ``template`` under commit number ``n``, signed with ``secret``."""
    commit = hashlib.sha1(f"{run}-{n}".encode()).hexdigest().encode()  # noqa: S324  (an id)
    body = template.body.replace(template.commit, commit)
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    delivery = str(uuid.uuid4())
    if template.forge == "github":
        forge_headers = (
            f"X-GitHub-Event: {template.event}\r\nX-GitHub-Delivery: {delivery}\r\n"
            f"X-Hub-Signature-256: sha256={digest}\r\n"
        )
    else:
        forge_headers = (
            f"X-Gitea-Event: {template.event}\r\nX-Gitea-Event-Type: {template.event}\r\n"
            f"X-Gitea-Delivery: {delivery}\r\nX-Gitea-Signature: {digest}\r\n"
        )
    head = (
        f"POST /webhook/{template.forge} HTTP/1.1\r\nHost: bench\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{forge_headers}\r\n"
    )
    return head.encode() + body


def deliveries(secret: bytes) -> Iterator[bytes]:
    """Endless distinct signed deliveries of a fresh run, cycling through the templates.

    Args:
        secret: The key every request is signed with.

    Yields:
        The whole HTTP request, head and body, each built when it is asked for.
    """
    run = uuid.uuid4().hex
    for n in itertools.count():
        yield build_request(TEMPLATES[n % len(TEMPLATES)], n, secret, run)


@dataclass
class LoadResult:
    """What one load run measured."""

    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        """Answers that made a new job (202)."""
        return self.statuses[202]

    def record(self, status: int, latency_s: float) -> None:
        """Count one answer that took ``latency_s`` seconds."""
        self.latencies_ms.append(latency_s * 1000)
        self.statuses[status] += 1


@dataclass
class RateResult(LoadResult):
    """What one constant-rate run measured; a status 0 is a delivery that got no answer.

    ``late`` deliveries found no idle connection at their turn: they waited for a new one to
    open or, at the cap, for an answer to free one (or for the ones before them that did).
    ``send_lag_ms`` is the generator's own share of the latencies: how long past its due time
    (or past the moment the deliveries before it were out, if later) each delivery's turn came,
    the timer's, event loop's and scheduler's delays, none of the server's.
    """

    rate: float = 0.0
    late: int = 0
    peak_connections: int = 0
    send_lag_ms: list[float] = field(default_factory=list)


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


class _Connection:
    """One keep-alive HTTP/1.1 connection to a server on 127.0.0.1."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        """A new connection to ``port``."""
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    @property
    def stale(self) -> bool:
        """The server closed it (an idle keep-alive timed out, say): it takes no more requests."""
        return self._reader.at_eof() or self._writer.is_closing()

    async def exchange(self, request: bytes) -> int:
        """Send ``request``, read the whole answer, return its status."""
        self._writer.write(request)
        return await _read_answer(self._reader)

    def close(self) -> None:
        """Close it (without waiting)."""
        self._writer.close()


async def _closed_loop(
    port: int, requests: Iterator[bytes], deadline: float, result: LoadResult
) -> None:
    connection = await _Connection.open(port)
    try:
        while time.perf_counter() < deadline:
            request = next(requests)
            started = time.perf_counter()
            status = await connection.exchange(request)
            result.record(status, time.perf_counter() - started)
    finally:
        connection.close()


async def run_load(port: int, secret: bytes, *, connections: int, seconds: float) -> LoadResult:
    """Post distinct signed deliveries over ``connections`` for ``seconds`` (closed loop).

    Args:
        port: The server's port on 127.0.0.1.
        secret: The key every delivery is signed with.
        connections: Keep-alive connections, each with one request in flight at all times.
        seconds: How long new requests are sent; the last answers are awaited.

    Returns:
        Every answer's status and latency (from its own send), and the seconds the run took.
    """
    requests = deliveries(secret)
    started = time.perf_counter()
    result = LoadResult(seconds)
    deadline = started + seconds
    await asyncio.gather(
        *(_closed_loop(port, requests, deadline, result) for _ in range(connections))
    )
    result.seconds = time.perf_counter() - started
    return result


class _Pool:
    """Keep-alive connections lent out one request at a time, at most ``cap`` of them open."""

    def __init__(self, port: int, cap: int) -> None:
        self._port = port
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(cap)  # one per request in flight
        self._open = 0
        self.peak = 0

    async def connect(self) -> _Connection:
        """A new connection, counted against the cap."""
        connection = await _Connection.open(self._port)
        self._open += 1
        self.peak = max(self.peak, self._open)
        return connection

    async def fill(self, count: int) -> None:
        """Open ``count`` idle connections (before the clock starts)."""
        for _ in range(count):
            self._idle.append(await self.connect())

    async def lend(self) -> tuple[_Connection | None, bool]:
        """The next idle connection (None: the borrower opens one), and whether it waited.

        It waits only at the cap, until an answer frees a connection. Idle connections are lent
        in turn (first freed, first lent), so that none sits long enough for the server to drop
        it; one the server dropped all the same is closed and passed over.
        """
        waited = self._slots.locked()
        await self._slots.acquire()
        while self._idle:
            connection = self._idle.popleft()
            if not connection.stale:
                return connection, waited
            self._close(connection)
        return None, waited

    def give_back(self, connection: _Connection) -> None:
        """Return a connection whose answer was read whole: it is idle again."""
        self._idle.append(connection)
        self._slots.release()

    def drop(self, connection: _Connection | None) -> None:
        """Close a connection that failed (or was never opened) and free its slot."""
        if connection is not None:
            self._close(connection)
        self._slots.release()

    def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            self._close(self._idle.popleft())

    def _close(self, connection: _Connection) -> None:
        connection.close()
        self._open -= 1


async def _deliver(
    pool: _Pool, connection: _Connection | None, request: bytes, due: float, result: RateResult
) -> None:
    answered = False
    try:
        if connection is None:
            connection = await pool.connect()
        sent = time.perf_counter()
        status = await connection.exchange(request)
        # From its turn; from the send only when the timer woke a little early.
        result.record(status, time.perf_counter() - min(due, sent))
        answered = True
    except (OSError, EOFError, ValueError):
        return  # refused, reset, closed or garbled: counted at the end as no answer
    finally:
        if answered and connection is not None:
            pool.give_back(connection)
        else:
            pool.drop(connection)


async def run_rate(
    port: int,
    secret: bytes,
    *,
    rate: float,
    seconds: float,
    max_connections: int = 64,
    grace: float = 10.0,
) -> RateResult:
    """Post distinct signed deliveries at ``rate`` a second for ``seconds`` (open loop).

    Delivery ``i`` is due at ``start + i / rate`` whatever became of the ones before it: it goes
    out on an idle keep-alive connection, or on a new one while fewer than ``max_connections``
    are open, or else as soon as an answer frees one. Its latency counts from when it was due,
    so a slow answer that holds it back is charged to the server (no coordinated omission).

    Args:
        port: The server's port on 127.0.0.1.
        secret: The key every delivery is signed with.
        rate: Deliveries a second.
        seconds: How long the schedule runs: ``round(rate * seconds)`` deliveries in all.
        max_connections: Cap on the connections open at once, and so on requests in flight.
        grace: Seconds after the schedule's end to wait for the last answers; deliveries still
            unanswered (or unsent) then count as status 0.

    Returns:
        Every answer's status and latency, ``seconds`` as the time until the last answer (not
        less than the schedule), how many deliveries were late, the most connections open and
        the generator's own lag behind the schedule.
    """
    count = max(1, round(rate * seconds))
    requests = deliveries(secret)
    pool = _Pool(port, max_connections)
    await pool.fill(min(max_connections, 8))
    result = RateResult(count / rate, rate=rate)
    in_flight: set[asyncio.Task[None]] = set()
    start = time.perf_counter() + 0.01
    freed = start  # when the last wait at the cap ended
    try:
        async with asyncio.timeout(count / rate + grace):
            for i in range(count):
                request = next(requests)  # built before its turn, off the measured time
                due = start + i / rate
                ready = time.perf_counter()
                await asyncio.sleep(max(0.0, due - ready))
                result.send_lag_ms.append((time.perf_counter() - max(due, ready)) * 1000)
                connection, waited = await pool.lend()
                if waited:
                    freed = time.perf_counter()
                result.late += waited or connection is None or due < freed
                task = asyncio.create_task(_deliver(pool, connection, request, due, result))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.wait(in_flight)
    except TimeoutError:
        pass
    finally:
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        pool.close()
    result.seconds = max(time.perf_counter() - start, result.seconds)
    if missing := count - sum(result.statuses.values()):
        result.statuses[0] += missing  # refused, reset, garbled, or not answered in time
    result.peak_connections = pool.peak
    return result


def fixture_sizes() -> dict[str, int]:
    """Bytes of each payload the load sends."""
    return {f"{t.forge} {t.event}": len(t.body) for t in TEMPLATES}
