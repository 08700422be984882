"""One table from domain errors to HTTP statuses, and the handlers that render the error body.

Every error answer is ``{"error": code, "message": text, "request_id": id}`` (plus details some
errors carry), whatever raised it: a domain error, FastAPI's validation, or Starlette's routing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match

from raibid_api import errors
from raibid_api.observability.requests import request_id_of

ERROR_STATUS: Mapping[type[errors.RaibidError], int] = {
    errors.InvalidInputError: 400,
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.PayloadTooLargeError: 413,
    errors.UnsupportedMediaTypeError: 415,
    errors.RateLimitedError: 429,
    errors.ServiceUnavailableError: 503,
    errors.ConfigError: 500,
}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
_log = structlog.get_logger("raibid_api.api")


def status_of(exc: errors.RaibidError) -> int:
    """The HTTP status of a domain error: the nearest class in the table along the MRO."""
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def error_response(
    request: Request, status: int, code: str, message: str, **extra: Any
) -> Response:
    """The JSON error body every failure answers with."""
    body = {"error": code, "message": message, "request_id": request_id_of(request.scope)}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(
        orjson.dumps(body | extra), status, headers=headers, media_type="application/json"
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.RaibidError)  # noqa: S101  (registered for this class only)
    status = status_of(exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.TransitionConflictError) and exc.current is not None:
        extra["job"] = exc.current
    response = error_response(request, status, exc.code, exc.message, **extra | exc.details)
    if isinstance(exc, errors.RateLimitedError):
        response.headers["Retry-After"] = str(exc.retry_after)
    if status >= 500:
        _log.warning("request failed", error=exc.code, message=exc.message)
    return response


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    problems = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
         "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]  # fmt: skip
    if any(p["type"] == "json_invalid" for p in problems):
        return error_response(request, 400, "invalid_json", "the body is not valid JSON")
    if any(p["loc"] == ["body"] and p["type"] == "model_attributes_type" for p in problems):
        content_type = request.headers.get("content-type", "")
        if content_type and "json" not in content_type:
            return error_response(request, 415, "unsupported_media_type",
                                  "send the body as application/json")  # fmt: skip
        return error_response(request, 400, "invalid_json", "the body must be a JSON object")
    summary = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems[:5])
    return error_response(request, 422, "validation_error", summary, problems=problems)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI's body parsing turns every failure but a JSONDecodeError into a bare 400:
        # bytes that are not UTF-8, nesting past the recursion limit, an integer too long
        # to convert, all of them a body that is not JSON this server reads
        return error_response(request, 400, "invalid_json", _unreadable_json(exc.__cause__))
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    response = error_response(request, exc.status_code, code, str(exc.detail))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(_allowed_methods(request))
    return response


def _unreadable_json(cause: ValueError | RecursionError) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return "the body is not valid JSON: it is not UTF-8 text"
    if isinstance(cause, RecursionError):
        return "the body is not valid JSON this server reads: it is nested too deeply"
    return "the body is not valid JSON this server reads: a number is too long"


def _allowed_methods(request: Request) -> list[str]:
    # Starlette's 405 names the methods of the first route matching the path only; a path that
    # several routes serve (GET and POST /jobs) allows the methods of all of them
    return [
        method for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
               for route in request.app.routes)
    ]  # fmt: skip


def internal_error_body(request_id: str) -> bytes:
    """The body of a 500: nothing about the failure but where to look."""
    return orjson.dumps({"error": "internal_error", "message": "internal error; see the server "
                         "log", "request_id": request_id})  # fmt: skip


async def _client_gone(request: Request, exc: Exception) -> Response:
    # the client left (or was cut at its deadline) before its body was in: nothing was acted
    # on, and the answer goes nowhere
    _log.info("client gone before its body was in", method=request.method)
    return error_response(request, 400, "client_disconnected", "the request body did not arrive")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(errors.RaibidError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
