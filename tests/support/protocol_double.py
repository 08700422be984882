"""A double of the server side of the agent protocol, and a line sink, for the agent's tests.

`ProtocolDouble` is a small HTTP/1.1 server on a loopback port implementing the agent protocol of
docs/architecture.md with the log-offset semantics (skip lines already held, 409 with the expected
offset on a gap). It can crash after storing a batch without answering, refuse connections while
"down", and come back on the same port with its state intact, as a restarted replica over Redis
would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass
class _Response:
    status: int
    body: dict[str, Any] | None = None


_REASONS = {200: "OK", 204: "No Content", 401: "Unauthorized", 404: "Not Found",
            409: "Conflict", 413: "Payload Too Large", 503: "Service Unavailable"}  # fmt: skip


class ProtocolDouble:
    """The server side of the agent protocol, in memory, on a loopback port."""

    def __init__(self, lease_seconds: float = 30.0) -> None:
        self.lease_seconds = lease_seconds
        self.queue: list[dict[str, Any]] = []
        self.tokens: dict[str, str] = {}
        self.logs: dict[str, list[dict[str, str]]] = {}
        self.completions: dict[str, list[dict[str, Any]]] = {}
        self.cancelled: set[str] = set()
        self.revoked: set[str] = set()
        self.requests: list[str] = []
        self.heartbeats = 0
        self.hold_heartbeats = False
        self.claims = 0
        self.claims_answer_at_once = False  # as a claim token whose job is not waiting
        self.commits: dict[str, list[str]] = {}
        self.skipped_lines = 0
        self.max_batch_lines: int | None = None
        self.crash_on_batch: int | None = None
        self.fail_next: list[int] = []
        self.batches = 0
        self.port = 0
        self.down = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._job_added = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def come_up(self) -> None:
        """Listen (again, on the same port after the first time)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.down = False

    async def go_down(self) -> None:
        """Stop listening and drop every open connection: connections are refused."""
        self.down = True
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    def add_job(self, job: dict[str, Any]) -> None:
        """Queue a job for the next claim."""
        self.queue.append(job)
        self.logs.setdefault(job["id"], [])
        self._job_added.set()

    def lines(self, job_id: str) -> list[str]:
        """The job's stored log lines, text only."""
        return [entry["line"] for entry in self.logs.get(job_id, [])]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            path, headers, body = await _read_request(reader)
            self.requests.append(path)
            response = await self._route(path, headers.get("authorization", ""), body)
            if response is None:  # a crash after the work was done, before the answer
                self.down = True
                writer.transport.abort()
                crash = asyncio.create_task(self.go_down())
                self._background.add(crash)
                crash.add_done_callback(self._background.discard)
                return
            writer.write(_encode(response))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _route(self, path: str, auth: str, body: dict[str, Any]) -> _Response | None:
        if self.fail_next:
            return _Response(self.fail_next.pop(0), {"error": "injected"})
        if path == "/agent/claim":
            return await self._claim(body)
        _, _, _, job_id, action = path.split("/")
        if self.tokens.get(job_id) != auth.removeprefix("Bearer ") or job_id in self.revoked:
            return _Response(401, {"error": "unauthenticated"})
        if action == "heartbeat":
            self.heartbeats += 1
            if self.hold_heartbeats:
                await self._hold(job_id, float(body.get("wait", 0)))
            return _Response(200, {"cancel": job_id in self.cancelled})
        if action == "logs":
            return self._append(job_id, body)
        if action == "commit":
            self.commits.setdefault(job_id, []).append(body["commit"])
            return _Response(200, {"commit": self.commits[job_id][0]})
        self.completions.setdefault(job_id, []).append(body)
        return _Response(200, {"status": body["status"]})

    async def _hold(self, job_id: str, wait: float) -> None:
        """A held heartbeat, as the server holds it: until the job is cancelled or ``wait``."""
        deadline = time.monotonic() + wait
        while job_id not in self.cancelled and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the double's own polling stands in for the server's wake

    async def _claim(self, body: dict[str, Any]) -> _Response:
        self.claims += 1
        if not self.queue and self.claims_answer_at_once:
            return _Response(204)
        if not self.queue:
            self._job_added.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._job_added.wait(), min(float(body["wait"]), 2.0))
        if not self.queue:
            return _Response(204)
        job = self.queue.pop(0)
        token = f"token-{job['id']}"
        self.tokens[job["id"]] = token
        expires = datetime.now(UTC) + timedelta(seconds=self.lease_seconds)
        return _Response(200, {"job": job, "token": token, "lease_expires_at": expires.isoformat(),
                               "lease_seconds": self.lease_seconds})  # fmt: skip

    def _append(self, job_id: str, body: dict[str, Any]) -> _Response | None:
        stored = self.logs.setdefault(job_id, [])
        lines, offset = body["lines"], body.get("offset", len(stored))
        if self.max_batch_lines is not None and len(lines) > self.max_batch_lines:
            return _Response(413, {"error": "payload_too_large"})
        if offset > len(stored):
            return _Response(409, {"error": "log_offset_gap", "expected_offset": len(stored)})
        skip = len(stored) - offset
        self.skipped_lines += min(skip, len(lines))
        stored.extend(lines[skip:])
        self.batches += 1
        if self.batches == self.crash_on_batch:
            return None
        return _Response(200, {"offset": len(stored)})


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], Any]:
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *header_lines = head.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    raw = await reader.readexactly(int(headers.get("content-length", "0")))
    return request_line.split()[1], headers, json.loads(raw) if raw else {}


def _encode(response: _Response) -> bytes:
    payload = b"" if response.body is None else json.dumps(response.body).encode()
    head = (f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n")  # fmt: skip
    return head.encode() + payload


@contextlib.asynccontextmanager
async def running_double(lease_seconds: float = 30.0) -> AsyncIterator[ProtocolDouble]:
    """A started `ProtocolDouble`, stopped on exit."""
    double = ProtocolDouble(lease_seconds)
    await double.come_up()
    try:
        yield double
    finally:
        await double.go_down()


class LineCollector:
    """A line sink that keeps every ``(stream, line)`` it is given."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []

    async def __call__(self, stream: str, line: str) -> None:
        self.entries.append((stream, line))

    def lines(self, stream: str | None = None) -> list[str]:
        """The lines, of one stream or all."""
        return [line for s, line in self.entries if stream is None or s == stream]
