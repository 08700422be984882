"""Status badges: an SVG of a branch's latest outcome, for a repository's README."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from raibid_api.api.deps import JobServiceDep, ReadPrincipal
from raibid_api.api.schemas import ErrorOut
from raibid_api.domain.badges import render_svg
from raibid_api.domain.jobs import REPO_PATTERN
from raibid_api.errors import InvalidInputError

router = APIRouter(tags=["badges"])

SVG = "image/svg+xml"
# the badge may be stored (browsers, Gitea's and GitHub's image proxies) but is revalidated on
# every use: the ETag makes that a 304 without a body
CACHE_CONTROL = "no-cache, max-age=0"


@router.get(
    "/badges/{owner}/{repo}/status.svg",
    responses={
        200: {"content": {SVG: {}}, "description": "the badge"},
        304: {"description": "the badge the client holds (If-None-Match) is current"},
        **{code: {"model": ErrorOut} for code in (400, 401, 403, 422, 503)},
    },
    response_class=Response,
    summary="A branch's status badge",
)
async def status_badge(
    owner: str,
    repo: str,
    request: Request,
    jobs: JobServiceDep,
    _: ReadPrincipal,
    branch: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=255,
            description="default: the repository's default branch, else main",
        ),
    ] = None,
) -> Response:
    """The outcome of the newest finished job of a branch: passing, failing or unknown."""
    name = f"{owner}/{repo}"
    if len(name) > 200 or not REPO_PATTERN.fullmatch(name):
        raise InvalidInputError("owner and repo must be a repository's owner/name")
    if branch is not None and not branch.isprintable():
        raise InvalidInputError("branch must be a branch name")
    badge = await jobs.badge(name, branch)
    body = render_svg(badge).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=SVG, headers=headers)
