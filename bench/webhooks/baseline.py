"""The baseline: bare Starlette doing only the irreducible work of a webhook intake.

Run it on the same ASGI server as raibid-api (uvicorn, uvloop, httptools, one worker)::

    BENCH_REDIS_URL=redis://127.0.0.1:6380/0 BENCH_SECRET=s .venv/bin/python -m uvicorn \
        bench.webhooks.baseline:app --loop uvloop --http httptools --no-access-log --port 8091

Per delivery: read the body, check its HMAC-SHA256 in constant time, parse the JSON, and write the
job in one pipelined round trip (HSET of the job hash + XADD to the queue stream), then answer 202.
No auth, dedup, rules, journal, rate limit or middleware: the floor any intake on this stack
stands on.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PREFIX = os.environ.get("BENCH_KEY_PREFIX", "baseline")
SECRET = os.environ.get("BENCH_SECRET", "").encode()


class _Clients:
    redis: Redis


CLIENTS = _Clients()


def _signature(request: Request) -> str:
    hub = request.headers.get("x-hub-signature-256", "")
    return request.headers.get("x-gitea-signature") or hub.removeprefix("sha256=")


async def receive(request: Request) -> Response:
    """Verify, parse, store in one pipelined round trip, answer."""
    body = await request.body()
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(_signature(request).encode(), expected.encode()):
        return Response(b'{"error":"signature_mismatch"}', 401, media_type="application/json")
    payload = orjson.loads(body)
    job_id = str(uuid.uuid4())
    job: dict[Any, Any] = {
        "id": job_id,
        "repo": payload["repository"]["full_name"],
        "ref": payload.get("ref", ""),
        "commit": payload.get("after") or payload["pull_request"]["head"]["sha"],
    }
    async with CLIENTS.redis.pipeline(transaction=False) as pipe:
        pipe.hset(f"{PREFIX}:job:{job_id}", mapping=job)
        pipe.xadd(f"{PREFIX}:jobs", {"job_id": job_id, "job": orjson.dumps(job)})
        await pipe.execute()
    return Response(orjson.dumps({"job_id": job_id}), 202, media_type="application/json")


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    """One client for the process, closed on shutdown."""
    CLIENTS.redis = Redis.from_url(os.environ["BENCH_REDIS_URL"], decode_responses=True)
    try:
        yield
    finally:
        await CLIENTS.redis.aclose()


async def health(_: Request) -> Response:
    """200, for the runner to know the server is up."""
    return Response(b"ok")


app = Starlette(
    routes=[Route("/webhook/{forge}", receive, methods=["POST"]), Route("/health", health)],
    lifespan=lifespan,
)
