"""`DirectRoute` takes only endpoints it can call with the request and the path parameters;
`DirectDispatch` serves such routes ahead of the layers behind it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from raibid_api.api.routing import DirectDispatch, DirectRoute


async def direct(request: Request, job_id: str) -> Response:
    return Response(job_id)


async def with_query(request: Request, job_id: str, limit: int = 5) -> Response:
    return Response(job_id * limit)


async def without_request(job_id: str) -> Response:
    return Response(job_id)


async def dependency() -> str:
    return "x"


async def with_dependency(
    request: Request, job_id: str, x: Annotated[str, Depends(dependency)]
) -> Response:
    return Response(job_id + x)


def test_an_endpoint_of_the_request_and_its_path_is_taken() -> None:
    route = DirectRoute("/jobs/{job_id}", direct, methods=["GET"])

    assert route.methods == {"GET"}


@pytest.mark.parametrize("endpoint", [with_query, without_request, with_dependency])
def test_an_endpoint_that_needs_solving_is_refused(endpoint: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match="only the request and its path parameters"):
        DirectRoute("/jobs/{job_id}", endpoint, methods=["GET"])


async def failing(request: Request, job_id: str) -> Response:
    raise KeyError(job_id)


async def key_error(request: Request, exc: Exception) -> Response:
    return Response(f"handled {exc}", status_code=404)


def dispatching(routes: list[DirectRoute], passed_on: list[str]) -> httpx.AsyncClient:
    """A client of `DirectDispatch` over an inner app that records what reached it."""

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        passed_on.append(f"{scope['method']} {scope['path']}")
        await Response("inner", status_code=418)(scope, receive, send)

    handlers = FastAPI()
    handlers.add_exception_handler(KeyError, key_error)
    dispatch = DirectDispatch(inner, routes)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # Starlette puts the application in the scope; its exception handlers answer failures
        await dispatch({**scope, "app": handlers}, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_the_dispatcher_serves_a_direct_route_without_the_layers_behind_it() -> None:
    passed_on: list[str] = []
    routes = [DirectRoute("/api/jobs/{job_id}", direct, methods=["GET"])]
    async with dispatching(routes, passed_on) as client:
        served = await client.get("/api/jobs/abc")
        other_method = await client.post("/api/jobs/abc")
        other_path = await client.get("/jobs/abc")

    assert (served.status_code, served.text) == (200, "abc")
    assert other_method.status_code == other_path.status_code == 418
    assert passed_on == ["POST /api/jobs/abc", "GET /jobs/abc"]


async def test_a_failure_of_a_dispatched_route_takes_the_app_exception_handler() -> None:
    passed_on: list[str] = []
    async with dispatching([DirectRoute("/jobs/{job_id}", failing, methods=["GET"])],
                           passed_on) as client:  # fmt: skip
        answer = await client.get("/jobs/xyz")

    assert (answer.status_code, answer.text) == (404, "handled 'xyz'")
    assert passed_on == []
