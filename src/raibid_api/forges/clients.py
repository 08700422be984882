"""The forges' commit status APIs: one client per forge behind the `StatusReporter` protocol.

A client never raises for what the forge or the network does: every POST ends in a `Delivery`
that says whether the forge took the status, whether to try again later (connection errors,
timeouts, 5xx, 429 and rate limits), or whether the forge refused it for good (any other 4xx).
The token travels only in the ``Authorization`` header and never reaches a log line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import quote

import httpx
import orjson

from raibid_api import __version__
from raibid_api.forges.states import CommitState

_DETAIL_LIMIT = 200
_RETRY_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class CommitStatus:
    """One commit status as every forge takes it."""

    repo: str  # owner/name
    commit: str  # the full sha
    state: CommitState
    description: str
    target_url: str
    context: str


@dataclass(frozen=True)
class Delivery:
    """What came of posting one status."""

    outcome: Literal["sent", "retry", "rejected"]
    http_status: int | None = None
    retry_after_s: float | None = None
    detail: str = ""


class StatusReporter(Protocol):
    """Posts commit statuses to one forge."""

    async def report(self, status: CommitStatus) -> Delivery:
        """Post ``status``; never raises for the forge's or the network's failures."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...


class _HttpStatusClient:
    """What the forge clients share: one connection pool, the POST, and reading the answer."""

    def __init__(
        self, url: str, token: str, headers: dict[str, str], path: str, timeout_s: float
    ) -> None:
        self._url = url.rstrip("/")
        self._token = token
        self._path = path
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            headers={"User-Agent": f"raibid-api/{__version__}", **headers},
            follow_redirects=False,
        )

    async def report(self, status: CommitStatus) -> Delivery:
        """Post ``status``; never raises for the forge's or the network's failures."""
        owner, _, name = status.repo.partition("/")
        path = self._path.format(
            owner=quote(owner, safe=""),
            name=quote(name, safe=""),
            sha=quote(status.commit, safe=""),
        )
        body = {"state": status.state, "target_url": status.target_url,
                "description": status.description, "context": status.context}  # fmt: skip
        try:
            response = await self._client.post(self._url + path, json=body)
        except httpx.TransportError as exc:
            return Delivery("retry", detail=f"{type(exc).__name__}: the forge did not answer")
        return self._read(response)

    def _read(self, response: httpx.Response) -> Delivery:
        code = response.status_code
        if response.is_success:
            return Delivery("sent", code)
        retry_after = _retry_after(response.headers.get("retry-after"))
        rate_limited = code == 403 and (
            retry_after is not None or response.headers.get("x-ratelimit-remaining") == "0"
        )
        detail = f"HTTP {code}: {self._message(response)}"
        if code >= 500 or code in _RETRY_STATUSES or rate_limited:
            return Delivery("retry", code, retry_after, detail)
        return Delivery("rejected", code, None, detail)

    def _message(self, response: httpx.Response) -> str:
        """The forge's own error message, short, with the token cut out should it echo it."""
        try:
            payload = orjson.loads(response.content)
            message = str(payload.get("message", "")) if isinstance(payload, dict) else ""
        except orjson.JSONDecodeError:
            message = ""
        message = (message or response.reason_phrase or "no message")[:_DETAIL_LIMIT]
        return message.replace(self._token, "***") if self._token else message

    async def aclose(self) -> None:
        """Close the connections."""
        await self._client.aclose()


class GiteaStatusClient(_HttpStatusClient):
    """Gitea's (and Forgejo's: the same API) ``POST /api/v1/repos/{o}/{r}/statuses/{sha}``."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 10.0) -> None:
        # "For historical reasons, Gitea needs the word `token` included before the API key"
        headers = {"Authorization": f"token {token}", "Accept": "application/json"}
        path = "/api/v1/repos/{owner}/{name}/statuses/{sha}"
        super().__init__(url, token, headers, path, timeout_s)


class GitHubStatusClient(_HttpStatusClient):
    """GitHub's ``POST /repos/{owner}/{repo}/statuses/{sha}`` (REST API 2022-11-28)."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 10.0) -> None:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        path = "/repos/{owner}/{name}/statuses/{sha}"
        super().__init__(url, token, headers, path, timeout_s)


def _retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` given in seconds; an HTTP date is left to the backoff."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)
