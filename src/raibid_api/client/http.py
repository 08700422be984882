"""The HTTP side of the terminal client: one call per API route, every failure one `ClientError`.

A `ClientError` carries a line for the user and the exit status the command ends with; it never
carries the token (httpx's own messages name the URL, which holds no credential: the token goes
in the ``Authorization`` header only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from httpx_sse import EventSource, connect_sse

from raibid_api.client.exits import REFUSED, UNREACHABLE

Job = dict[str, Any]
EVENT_STREAM = "text/event-stream"
# a live stream sends a heartbeat comment every logs.heartbeat (15 s by default): a read that
# waits far longer than that is a dead connection
TIMEOUT = httpx.Timeout(15.0, read=60.0)


class ClientError(Exception):
    """A call that failed: ``message`` for the user, ``exit_code`` for the shell."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Connection:
    """Where the server is and how to authenticate (the token is never shown)."""

    url: str
    token: str | None = field(default=None, repr=False)


def check_url(url: str) -> str:
    """``url`` without a trailing slash.

    Raises:
        ValueError: not an http(s) URL with a host, or one carrying credentials.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the server URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise ValueError("the server URL must not carry credentials; use the token options")
    return url.rstrip("/")


class ApiClient:
    """The routes of the jobs API the terminal client calls."""

    def __init__(self, connection: Connection, transport: httpx.BaseTransport | None = None):
        headers = {"User-Agent": "raibid-api-client"}
        if connection.token:
            headers["Authorization"] = f"Bearer {connection.token}"
        self.base_url = connection.url
        self._http = httpx.Client(
            base_url=connection.url, headers=headers, timeout=TIMEOUT, transport=transport
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_jobs(self, params: dict[str, str | int]) -> dict[str, Any]:
        """`GET /jobs` with these filters: ``{"jobs": [...], "next_cursor": ..., "total": n}``."""
        page: dict[str, Any] = self._call("GET", "/jobs", params=params).json()
        return page

    def job(self, job_id: str) -> Job:
        """`GET /jobs/{id}`."""
        job: Job = self._call("GET", f"/jobs/{job_id}").json()
        return job

    def cancel(self, job_id: str, reason: str | None) -> Job:
        """`POST /jobs/{id}/cancel`."""
        body = {"reason": reason} if reason else None
        job: Job = self._call("POST", f"/jobs/{job_id}/cancel", json=body).json()
        return job

    def retry(self, job_id: str) -> Job:
        """`POST /jobs/{id}/retry`: the new job."""
        job: Job = self._call("POST", f"/jobs/{job_id}/retry").json()
        return job

    def trigger(self, body: dict[str, str]) -> Job:
        """`POST /jobs`: a manual job."""
        job: Job = self._call("POST", "/jobs", json=body).json()
        return job

    def log_text(self, job_id: str) -> str:
        """`GET /jobs/{id}/logs` as text."""
        return self._call("GET", f"/jobs/{job_id}/logs", headers={"Accept": "text/plain"}).text

    @contextmanager
    def log_stream(self, job_id: str, last_event_id: str | None) -> Iterator[EventSource]:
        """`GET /jobs/{id}/logs` as Server-Sent Events, after ``last_event_id``.

        Raises:
            ClientError: the server refused the request (the stream never started).
            httpx.TransportError: the connection failed or dropped (the caller may resume).
        """
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        with connect_sse(self._http, "GET", f"/jobs/{job_id}/logs", headers=headers) as source:
            response = source.response
            if response.status_code != 200:
                response.read()
                raise _refusal(response)
            if EVENT_STREAM not in response.headers.get("content-type", ""):
                raise ClientError(f"{self.base_url} did not answer with an event stream", REFUSED)
            yield source

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(self.base_url, exc) from None
        if response.is_success:
            return response
        raise _refusal(response)


def unreachable(url: str, exc: Exception) -> ClientError:
    """The error of a server that could not be reached (or dropped the connection)."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        reason = "connection refused" if "refused" in reason.lower() else reason
    elif isinstance(exc, httpx.TimeoutException):
        reason = "timed out"
    return ClientError(f"cannot reach {url}: {reason}", UNREACHABLE)


def _refusal(response: httpx.Response) -> ClientError:
    """The error of a non-2xx answer, from the API's JSON error body when there is one."""
    status = response.status_code
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = f"{body['message']} ({status} {body.get('error', 'error')})"
    else:
        text = f"the server answered {status} {response.reason_phrase}"
    if status == 401:
        text = f"the server refused the credentials: {text}; set RAIBID_TOKEN or --token"
    return ClientError(text, UNREACHABLE if status >= 500 else REFUSED)
