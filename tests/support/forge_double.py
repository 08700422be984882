"""A local HTTP double of Gitea's and GitHub's commit status APIs that records every request.

Shapes follow the forges' API docs: Gitea ``POST /api/v1/repos/{owner}/{repo}/statuses/{sha}``
with ``Authorization: token <t>`` answers 201 with a ``CommitStatus`` (whose state is named
``status``); GitHub ``POST /repos/{owner}/{repo}/statuses/{sha}`` with ``Authorization: Bearer
<t>`` answers 201 with a status (``state``). Both answer 401 to a bad token, 404 to an unknown
repository and 422 to an invalid state or an over-long description (GitHub's limit, 140).
The double can go down (its port refuses connections), answer 500s or 429s, hang without
answering, and come back.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import h11
import orjson

Flavour = Literal["gitea", "github"]
Mode = Literal["up", "error", "rate_limited", "forbidden", "quota", "hang"]
STATES = frozenset({"pending", "success", "error", "failure"})
_STAMP = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the double received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class PostedStatus:
    """A status the double accepted."""

    repo: str
    sha: str
    state: str
    context: str
    description: str
    target_url: str


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class ForgeDouble:
    """One forge's commit status API on a loopback port."""

    flavour: Flavour
    token: str
    repos: set[str]
    mode: Mode = "up"
    retry_after: str = "7"
    requests: list[RecordedRequest] = field(default_factory=list)
    statuses: list[PostedStatus] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        """The API URL a client is configured with."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def go_down(self) -> None:
        """Stop listening: connections to the port are refused until `come_back`."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def come_back(self) -> None:
        """Listen on the same port again, answering normally."""
        self.mode = "up"
        await self.start()

    async def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            await self.go_down()

    def shown(self, repo: str, sha: str, context: str) -> str | None:
        """The state the forge shows for a commit and context: the last one posted."""
        states = [
            s.state for s in self.statuses if (s.repo, s.sha, s.context) == (repo, sha, context)
        ]
        return states[-1] if states else None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                writer.close()
                return
        assert request is not None
        recorded = self._record(request, body)
        if self.mode == "hang":
            await self._release.wait()
            writer.close()
            return
        answer = self._answer(recorded)
        data = orjson.dumps(answer.body)
        headers = [
            ("content-type", "application/json; charset=utf-8"),
            ("content-length", str(len(data))),
            ("connection", "close"),
            *answer.headers,
        ]
        writer.write(
            conn.send(
                h11.Response(
                    status_code=answer.status,
                    headers=headers,
                    reason=http.HTTPStatus(answer.status).phrase.encode(),
                )
            )
            or b""
        )
        writer.write(conn.send(h11.Data(data=data)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    def _record(self, request: h11.Request, body: bytes) -> RecordedRequest:
        headers = {name.decode().lower(): value.decode() for name, value in request.headers}
        recorded = RecordedRequest(request.method.decode(), request.target.decode(), headers, body)
        self.requests.append(recorded)
        return recorded

    def _answer(self, request: RecordedRequest) -> Answer:
        api = _GITEA if self.flavour == "gitea" else _GITHUB
        if self.mode == "error":
            return Answer(500, {"message": "internal server error"})
        if self.mode == "rate_limited":
            return Answer(429, {"message": "rate limited"}, (("retry-after", self.retry_after),))
        if self.mode == "forbidden":
            return Answer(403, {"message": "Resource not accessible by integration"})
        if self.mode == "quota":  # GitHub's primary rate limit: 403 with x-ratelimit-remaining 0
            headers = (("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1790000000"))
            return Answer(403, {"message": "API rate limit exceeded"}, headers)
        route = api.pattern.match(request.path)
        if route is None or request.method != "POST":
            return api.not_found()
        if request.headers.get("authorization") != f"{api.scheme} {self.token}":
            return api.unauthorized()
        owner, name, sha = route.groups()
        if f"{owner}/{name}" not in self.repos:
            return api.not_found()
        payload = orjson.loads(request.body)
        problem = _invalid(payload)
        if problem:
            return api.invalid(problem)
        posted = PostedStatus(
            f"{owner}/{name}",
            sha,
            payload["state"],
            payload.get("context", ""),
            payload.get("description", ""),
            payload.get("target_url", ""),
        )
        self.statuses.append(posted)
        return Answer(201, api.created(next(self._ids), posted, self.url))


def _invalid(payload: Any) -> str | None:
    if not isinstance(payload, dict) or payload.get("state") not in STATES:
        return "state is not included in the list"
    if len(str(payload.get("description", ""))) > 140:
        return "description is too long (maximum is 140 characters)"
    return None


@dataclass(frozen=True)
class _GiteaApi:
    pattern: re.Pattern[str] = re.compile(r"^/api/v1/repos/([^/]+)/([^/]+)/statuses/([0-9a-f]+)$")
    scheme: str = "token"

    def not_found(self) -> Answer:
        body = {"errors": ["repository not found"], "message": "The target couldn't be found."}
        return Answer(404, body | {"url": "/api/swagger"})

    def unauthorized(self) -> Answer:
        return Answer(401, {"message": "token is required", "url": "/api/swagger"})

    def invalid(self, problem: str) -> Answer:
        return Answer(422, {"message": problem, "url": "/api/swagger"})

    def created(self, status_id: int, s: PostedStatus, base: str) -> dict[str, Any]:
        return {"id": status_id, "status": s.state, "target_url": s.target_url,
                "description": s.description, "context": s.context,
                "url": f"{base}/api/v1/repos/{s.repo}/statuses/{s.sha}",
                "creator": {"id": 1, "login": "ci-bot"}, "created_at": _STAMP,
                "updated_at": _STAMP}  # fmt: skip


@dataclass(frozen=True)
class _GitHubApi:
    pattern: re.Pattern[str] = re.compile(r"^/repos/([^/]+)/([^/]+)/statuses/([0-9a-f]+)$")
    scheme: str = "Bearer"
    docs: str = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"

    def not_found(self) -> Answer:
        return Answer(
            404, {"message": "Not Found", "documentation_url": self.docs, "status": "404"}
        )

    def unauthorized(self) -> Answer:
        return Answer(401, {"message": "Bad credentials", "documentation_url": self.docs,
                            "status": "401"})  # fmt: skip

    def invalid(self, problem: str) -> Answer:
        return Answer(422, {"message": "Validation Failed", "documentation_url": self.docs,
                            "errors": [{"resource": "Status", "code": "custom",
                                        "message": problem}], "status": "422"})  # fmt: skip

    def created(self, status_id: int, s: PostedStatus, base: str) -> dict[str, Any]:
        return {"url": f"{base}/repos/{s.repo}/statuses/{s.sha}", "id": status_id,
                "node_id": f"SC_{status_id}", "state": s.state, "description": s.description,
                "target_url": s.target_url, "context": s.context, "created_at": _STAMP,
                "updated_at": _STAMP, "creator": {"login": "ci-bot", "id": 1}}  # fmt: skip


_GITEA = _GiteaApi()
_GITHUB = _GitHubApi()
