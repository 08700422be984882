"""Every bad input of the agent protocol: a clear JSON error; the jobs, logs and queue unchanged.

Each case runs against a job the agent holds (``held``), a second held job (``other``) whose token
is the wrong one, and a job still waiting in the queue (``waiting``), which a refused claim must
leave waiting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from raibid_api.jobs.agents import token_hash
from tests.support.agent_protocol import (
    AGENT_TOKEN,
    READ_TOKEN,
    Held,
    ProtocolApp,
    Snapshot,
    assert_error,
    bearer,
)

MAX_BATCH_LINES = 5_000  # the defaults of logs.max_batch_lines, logs.max_line_bytes
MAX_LINE_BYTES = 16_384  # and server.max_body_bytes
MAX_BODY_BYTES = 1_048_576
UNKNOWN_JOB = "00000000-0000-4000-8000-000000000000"
HELD, OTHER = "<the held job's token>", "<the other job's token>"
HELD_DIGEST = "<the sha256 the server keeps of the held job's token>"


@dataclass(frozen=True)
class Scene:
    """The jobs a bad call could harm."""

    held: Held
    other: Held
    waiting: dict[str, object]

    @property
    def waiting_id(self) -> str:
        """The id of the job that waits in the queue."""
        return str(self.waiting["id"])


Send = Callable[[ProtocolApp, Scene], Awaitable[httpx.Response]]


def job_call(action: str, body: object = None, token: str | None = HELD) -> Send:
    """A call about the held job, with the held job's token, another job's, or ``token`` itself."""

    def send(api: ProtocolApp, scene: Scene) -> Awaitable[httpx.Response]:
        stand_ins = {
            HELD: scene.held.token,
            OTHER: scene.other.token,
            HELD_DIGEST: token_hash(scene.held.token),
        }
        return api.call(scene.held.id, action, stand_ins.get(str(token), token), body)

    return send


def raw_call(action: str, content: bytes, content_type: str = "application/json") -> Send:
    """A call about the held job whose body is ``content`` as it is."""

    def send(api: ProtocolApp, scene: Scene) -> Awaitable[httpx.Response]:
        headers = bearer(scene.held.token) | {"Content-Type": content_type}
        path = f"/agent/jobs/{scene.held.id}/{action}"
        return api.http.post(path, content=content, headers=headers)

    return send


def call_on(job_id: str, action: str = "heartbeat") -> Send:
    """A call naming ``job_id`` with the held job's token."""

    def send(api: ProtocolApp, scene: Scene) -> Awaitable[httpx.Response]:
        return api.call(job_id, action, scene.held.token, {"lines": ["x"]})

    return send


def call_on_waiting(action: str, body: object = None) -> Send:
    """A call naming the waiting job (never claimed) with the held job's token."""

    def send(api: ProtocolApp, scene: Scene) -> Awaitable[httpx.Response]:
        return api.call(scene.waiting_id, action, scene.held.token, body)

    return send


def claim_with(headers: dict[str, str] | None, body: object = None) -> Send:
    """A claim with these headers (the agent token when None) and body."""

    def send(api: ProtocolApp, scene: Scene) -> Awaitable[httpx.Response]:
        sent = {"agent_id": "agent-x", "wait": 0} if body is None else body
        used = bearer(AGENT_TOKEN) if headers is None else headers
        return api.http.post("/agent/claim", json=sent, headers=used)

    return send


def claim_with_job_token() -> Send:
    """A claim whose bearer is a job token instead of an agent token."""

    def send(api: ProtocolApp, scene: Scene) -> Awaitable[httpx.Response]:
        return claim_with(bearer(scene.held.token))(api, scene)

    return send


TOKEN_CASES: dict[str, tuple[Send, int, str]] = {
    "heartbeat without a token": (job_call("heartbeat", token=None), 401, "invalid_job_token"),
    "heartbeat with a made-up token": (
        job_call("heartbeat", token="not-a-token"), 401, "invalid_job_token"),
    "heartbeat with another job's token": (
        job_call("heartbeat", token=OTHER), 401, "invalid_job_token"),
    "heartbeat with the agent token": (
        job_call("heartbeat", token=AGENT_TOKEN), 401, "invalid_job_token"),
    "heartbeat with the digest the server keeps": (
        job_call("heartbeat", token=HELD_DIGEST), 401, "invalid_job_token"),
    "logs with another job's token": (
        job_call("logs", {"offset": 0, "lines": ["x"]}, token=OTHER), 401, "invalid_job_token"),
    "logs without a token": (
        job_call("logs", {"lines": ["x"]}, token=None), 401, "invalid_job_token"),
    "complete with another job's token": (
        job_call("complete", {"status": "success"}, token=OTHER), 401, "invalid_job_token"),
    "complete with a read token": (
        job_call("complete", {"status": "success"}, token=READ_TOKEN), 401, "invalid_job_token"),
    "claim without a token": (claim_with({}), 401, "unauthenticated"),
    "claim with a read token": (claim_with(bearer(READ_TOKEN)), 403, "forbidden"),
    "claim with a job token": (claim_with_job_token(), 401, "unauthenticated"),
    "heartbeat of an unknown job": (call_on(UNKNOWN_JOB), 404, "job_not_found"),
    "logs of an unknown job": (call_on(UNKNOWN_JOB, "logs"), 404, "job_not_found"),
    "heartbeat of a job id that is no uuid": (call_on("not-a-uuid"), 400, "invalid_job_id"),
    "heartbeat of a waiting job": (call_on_waiting("heartbeat"), 401, "invalid_job_token"),
    "logs of a waiting job": (
        call_on_waiting("logs", {"lines": ["x"]}), 401, "invalid_job_token"),
    "complete of a waiting job": (
        call_on_waiting("complete", {"status": "success"}), 401, "invalid_job_token"),
}  # fmt: skip

MALFORMED_CASES: dict[str, tuple[Send, int, str]] = {
    "log batch that is not JSON": (raw_call("logs", b"lines: [a]"), 400, "invalid_json"),
    "log batch that is a JSON array": (raw_call("logs", b'["a"]'), 400, "invalid_json"),
    "log batch sent as text": (
        raw_call("logs", b"a\nb\n", "text/plain"), 415, "unsupported_media_type"),
    "log batch without lines": (job_call("logs", {"offset": 0}), 422, "validation_error"),
    "log batch whose lines are a string": (
        job_call("logs", {"lines": "a\nb"}), 422, "validation_error"),
    "log line that is a number": (job_call("logs", {"lines": ["a", 7]}), 422, "validation_error"),
    "log line object without its line": (
        job_call("logs", {"lines": [{"stream": "stdout"}]}), 422, "validation_error"),
    "log line on an unknown stream": (
        job_call("logs", {"lines": [{"line": "a", "stream": "stdlog"}]}), 422,
        "validation_error"),
    "log line object with an unknown key": (
        job_call("logs", {"lines": [{"line": "a", "colour": "red"}]}), 422, "validation_error"),
    "log batch with a negative offset": (
        job_call("logs", {"offset": -1, "lines": ["a"]}), 422, "validation_error"),
    "log batch with an offset that is no number": (
        job_call("logs", {"offset": "zero", "lines": ["a"]}), 422, "validation_error"),
    "log batch with an unknown key": (
        job_call("logs", {"lines": ["a"], "attempt": 2}), 422, "validation_error"),
    "claim with a malformed agent id": (
        claim_with(None, {"agent_id": "agent x/../y", "wait": 0}), 422, "validation_error"),
    "claim waiting false": (
        claim_with(None, {"agent_id": "agent-x", "wait": False}), 422, "validation_error"),
    "claim waiting a numeric string": (
        claim_with(None, {"agent_id": "agent-x", "wait": "1"}), 422, "validation_error"),
    "heartbeat waiting false": (job_call("heartbeat", {"wait": False}), 422, "validation_error"),
    "log batch with a boolean offset": (
        job_call("logs", {"offset": True, "lines": ["a"]}), 422, "validation_error"),
    "log batch that is not UTF-8": (
        raw_call("logs", b'{"lines": ["\xff\xfe"]}'), 400, "invalid_json"),
    "log batch nested past the recursion limit": (
        raw_call("logs", b"[" * 100_000 + b"]" * 100_000), 400, "invalid_json"),
    "log batch with a 5000-digit offset": (
        raw_call("logs", b'{"offset": ' + b"9" * 5000 + b', "lines": []}'), 400, "invalid_json"),
    "claim waiting longer than allowed": (
        claim_with(None, {"agent_id": "agent-x", "wait": 61}), 422, "validation_error"),
}  # fmt: skip

OVERSIZED_CASES: dict[str, tuple[Send, int, str]] = {
    "log batch with too many lines": (
        job_call("logs", {"offset": 0, "lines": ["x"] * (MAX_BATCH_LINES + 1)}), 413,
        "payload_too_large"),
    "log line over the line limit": (
        job_call("logs", {"lines": ["ok", "y" * (MAX_LINE_BYTES + 1)]}), 413,
        "payload_too_large"),
    "log batch over the body limit": (
        job_call("logs", {"lines": ["z" * 1000] * (MAX_BODY_BYTES // 1000)}), 413,
        "payload_too_large"),
}  # fmt: skip

COMPLETE_CASES: dict[str, tuple[Send, int, str]] = {
    "complete as cancelled": (
        job_call("complete", {"status": "cancelled"}), 422, "validation_error"),
    "complete with an unknown status": (
        job_call("complete", {"status": "done", "exit_code": 0}), 422, "validation_error"),
    "complete with an upper-case status": (
        job_call("complete", {"status": "SUCCESS"}), 422, "validation_error"),
    "complete without a status": (job_call("complete", {"exit_code": 0}), 422, "validation_error"),
    "complete with an exit code that is no number": (
        job_call("complete", {"status": "failed", "exit_code": "one"}), 422, "validation_error"),
    "complete with a boolean exit code": (
        job_call("complete", {"status": "success", "exit_code": True}), 422, "validation_error"),
    "complete with a fractional exit code": (
        job_call("complete", {"status": "failed", "exit_code": 1.5}), 422, "validation_error"),
    "complete with an overlong reason": (
        job_call("complete", {"status": "failed", "reason": "r" * 201}), 422, "validation_error"),
    "complete that is not JSON": (raw_call("complete", b"success"), 400, "invalid_json"),
}  # fmt: skip

ALL_CASES = TOKEN_CASES | MALFORMED_CASES | OVERSIZED_CASES | COMPLETE_CASES


async def snapshots(api: ProtocolApp, scene: Scene) -> list[Snapshot]:
    """What Redis holds about every job of the scene (and the queue, in each)."""
    return [
        await api.snapshot(scene.held.id),
        await api.snapshot(scene.other.id),
        await api.snapshot(scene.waiting_id),
    ]


@pytest.fixture
async def scene(api: ProtocolApp) -> Scene:
    held = await api.trigger_and_claim("agent-1")
    await api.send_logs(held, ["one", "two"], offset=0)
    other = await api.trigger_and_claim("agent-2")
    return Scene(held, other, await api.trigger("waiting"))


@pytest.mark.parametrize("case", ALL_CASES.values(), ids=ALL_CASES.keys())
async def test_bad_call_answers_a_json_error_and_changes_nothing(
    api: ProtocolApp, scene: Scene, case: tuple[Send, int, str]
) -> None:
    send, status, code = case
    before = await snapshots(api, scene)

    response = await send(api, scene)

    assert_error(response, status, code)
    assert await snapshots(api, scene) == before
    assert len(before[0].queue) == 3
    assert before[0].claimed_entries == 2


# one of each kind: the snapshot test above already shows that no bad call writes anything
AFTERMATH_CASES = [
    "heartbeat with another job's token",
    "complete with a read token",
    "claim with a read token",
    "log batch that is not JSON",
    "log line on an unknown stream",
    "log batch with too many lines",
    "log batch over the body limit",
    "complete with an unknown status",
]


@pytest.mark.parametrize("name", AFTERMATH_CASES)
async def test_the_held_job_goes_on_normally_after_a_bad_call(
    api: ProtocolApp, scene: Scene, name: str
) -> None:
    send, _, _ = ALL_CASES[name]
    await send(api, scene)

    assert (await api.heartbeat(scene.held))["cancel"] is False
    assert await api.send_logs(scene.held, ["three"], offset=2) == 3
    assert (await api.complete(scene.held, "success")).status_code == 200
    assert [line for _, line in await api.log_lines(scene.held.id)] == ["one", "two", "three"]
    assert (await api.job(scene.waiting_id))["status"] == "pending"
