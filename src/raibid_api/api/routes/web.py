"""The web dashboard: one HTML page and its scripts and styles, from the package's `static/` folder.

Nothing is built at install and nothing comes from a CDN: the files in `api/static/` are served
as they are. They are read once, at import. Every asset URL carries a digest of all of them
(`/ui/static/<digest>/<name>`), so an asset is cached for a year and a new release is fetched at
once; the page itself is revalidated (`no-cache` with an `ETag`). The page holds no data: it asks
the API for jobs and logs with the visitor's token, so it is served without one.

The Content-Security-Policy allows scripts, styles and connections from this origin only, and no
inline script: a log line or a commit message that holds markup can never run as code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import Response

from raibid_api.domain.jobs import parse_job_id
from raibid_api.errors import NotFoundError

router = APIRouter(tags=["web"], include_in_schema=False)

STATIC_PREFIX = "/ui/static"
JOB_PAGE_PREFIX = "/ui/jobs"
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # a stream token in an EventSource URL must not travel on in a Referer
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
ASSET_CACHE = "public, max-age=31536000, immutable"
PAGE_CACHE = "no-cache"
_VERSION_MARK = "__ASSETS__"


@dataclass(frozen=True)
class Asset:
    """One file as it is served: its bytes, media type and entity tag."""

    body: bytes
    media_type: str
    etag: str


def _load() -> tuple[str, Asset, dict[str, Asset]]:
    """(the digest of every file, the page, the other files by name) from `api/static/`."""
    folder = resources.files("raibid_api.api").joinpath("static")
    files = {
        entry.name: entry.read_bytes()
        for entry in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if entry.is_file() and any(entry.name.endswith(ext) for ext in _MEDIA_TYPES)
    }
    hasher = hashlib.sha256()
    for name, body in files.items():
        hasher.update(name.encode() + b"\0" + body + b"\0")
    digest = hasher.hexdigest()[:16]
    page_body = files.pop("index.html").replace(
        _VERSION_MARK.encode(), f"{STATIC_PREFIX}/{digest}".encode()
    )
    page = Asset(page_body, _MEDIA_TYPES[".html"], f'"{digest}"')
    assets = {
        name: Asset(body, _MEDIA_TYPES["." + name.rpartition(".")[2]], f'"{digest}"')
        for name, body in files.items()
    }
    return digest, page, assets


DIGEST, PAGE, ASSETS = _load()


def _answer(request: Request, asset: Asset, cache_control: str) -> Response:
    headers = SECURITY_HEADERS | {"Cache-Control": cache_control, "ETag": asset.etag}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/", summary="The dashboard: the job list")
async def dashboard(request: Request) -> Response:
    """The dashboard page; its script shows the job list."""
    return _answer(request, PAGE, PAGE_CACHE)


@router.get(JOB_PAGE_PREFIX + "/{job_id}", summary="A job's page: its live log")
async def job_page(request: Request, job_id: str) -> Response:
    """The dashboard page; its script shows the job (what `links.web` points at)."""
    parse_job_id(job_id)
    return _answer(request, PAGE, PAGE_CACHE)


@router.get(STATIC_PREFIX + "/{digest}/{name}", summary="A script or style of the dashboard")
async def static_asset(request: Request, digest: str, name: str) -> Response:
    """A file of the dashboard; cached for good when asked under the current digest.

    A page of an older release may still ask under its own digest: it gets today's file,
    revalidated each time rather than cached.
    """
    asset = ASSETS.get(name)
    if asset is None:
        raise NotFoundError(f"the dashboard has no file {name!r}")
    return _answer(request, asset, ASSET_CACHE if digest == DIGEST else PAGE_CACHE)
