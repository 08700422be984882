"""`DirectRoute` takes only endpoints it can call with the request and the path parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import Depends, Request
from starlette.responses import Response

from raibid_api.api.routing import DirectRoute


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
