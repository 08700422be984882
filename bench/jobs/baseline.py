"""The baseline: bare Starlette doing the Redis reads of the jobs API, and nothing else.

Run it on the same ASGI server as raibid-api (uvicorn, uvloop, httptools, one worker)::

    BENCH_REDIS_URL=redis://127.0.0.1:6380/0 .venv/bin/python -m uvicorn bench.jobs.baseline:app \
        --loop uvloop --http httptools --no-access-log --port 8090

`GET /jobs/{id}` is one HGETALL (redis.asyncio with hiredis) answered as JSON; `GET /jobs` runs the
server's own listing script and the pipelined HGETALLs. No auth, no validation, no middleware, no
links: the floor any framework on this stack stands on.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from raibid_api.storage.keys import Keys

KEYS = Keys(os.environ.get("BENCH_KEY_PREFIX", "raibid"))
LIST_SCRIPT = resources.files("raibid_api.storage").joinpath("scripts", "job_list.lua").read_text()


class _Clients:
    redis: Redis
    list_script: AsyncScript


CLIENTS = _Clients()


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


async def get_job(request: Request) -> Response:
    """One job hash as JSON, or 404."""
    fields = await CLIENTS.redis.hgetall(KEYS.job(request.path_params["job_id"]))
    if not fields:
        return _json({"error": "job_not_found"}, 404)
    return _json(fields)


async def list_jobs(request: Request) -> Response:
    """The newest 50 jobs of one status and one repo, and how many match."""
    redis = CLIENTS.redis
    params = request.query_params
    indexes = [KEYS.index_status(params["status"]), KEYS.index_repo(params["repo"])]
    reply = await CLIENTS.list_script(
        keys=[KEYS.list_scratch(uuid.uuid4().hex), *indexes], args=["+inf", "", "-inf", 51]
    )
    total, flat = reply[0], reply[1:]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in flat[0:100:2]:
            pipe.hgetall(KEYS.job(job_id))
        jobs = await pipe.execute()
    return _json({"jobs": jobs, "total": total})


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    """One client for the process, closed on shutdown."""
    CLIENTS.redis = Redis.from_url(os.environ["BENCH_REDIS_URL"], decode_responses=True)
    CLIENTS.list_script = CLIENTS.redis.register_script(LIST_SCRIPT)
    try:
        yield
    finally:
        await CLIENTS.redis.aclose()


app = Starlette(
    routes=[Route("/jobs/{job_id}", get_job), Route("/jobs", list_jobs)], lifespan=lifespan
)
