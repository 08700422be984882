"""The webhook load generator: real recorded payloads, signed anew under a fresh commit each.

Every request is a distinct push or pull request (its commit sha replaced everywhere in the
payload, so content coalescing never folds two into one job) with a fresh delivery id and a
correct HMAC, built as it is sent. The client is a bare HTTP/1.1 keep-alive client on asyncio
streams: a fixed number of connections, each sending its next request as soon as the last answer
is read (closed loop), so its own cost per request stays small next to the server's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from bench.common import REPO_ROOT

FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "webhooks"


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


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _connection(
    port: int, requests: Iterator[bytes], deadline: float, result: LoadResult
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            request = next(requests)
            started = time.perf_counter()
            writer.write(request)
            status = await _read_answer(reader)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[status] += 1
    finally:
        writer.close()


async def run_load(port: int, secret: bytes, *, connections: int, seconds: float) -> LoadResult:
    """Post distinct signed deliveries over ``connections`` for ``seconds``."""
    run = uuid.uuid4().hex
    numbers = itertools.count()
    requests = (build_request(TEMPLATES[n % len(TEMPLATES)], n, secret, run) for n in numbers)
    started = time.perf_counter()
    result = LoadResult(seconds)
    deadline = started + seconds
    await asyncio.gather(
        *(_connection(port, requests, deadline, result) for _ in range(connections))
    )
    result.seconds = time.perf_counter() - started
    return result


def fixture_sizes() -> dict[str, int]:
    """Bytes of each payload the load sends."""
    return {f"{t.forge} {t.event}": len(t.body) for t in TEMPLATES}
