"""`raibid-api serve` as a real process: real HTTP, its embedded Redis, shutdown and restart."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from redis import Redis

from raibid_api.storage.keys import GROUP
from tests.support.server_process import (
    READ,
    TRIGGER,
    WRITE,
    ServerFactory,
    redis_port,
    stop_cleanly,
)

pytestmark = pytest.mark.e2e


def test_served_jobs_api_over_real_http(start_server: ServerFactory, tmp_path: Path) -> None:
    server = start_server(tmp_path / "redis")
    redis_pid = server.redis_pid()
    with httpx.Client(base_url=server.base_url, timeout=5.0) as http:
        health = http.get("/health")
        assert health.status_code == 200
        assert health.json()["healthy"] is True
        ready = http.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"redis": "ok"}

        created = http.post("/jobs", headers=WRITE, json=TRIGGER)
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["links"]["self"] == f"{server.base_url}/jobs/{job['id']}"
        assert http.get(f"/jobs/{job['id']}", headers=READ).json() == job
        listed = http.get("/jobs", headers=READ, params={"repo": "acme/widgets"}).json()
        assert [item["id"] for item in listed["jobs"]] == [job["id"]]
        assert listed["total"] == 1

        cancelled = http.post(f"/jobs/{job['id']}/cancel", headers=WRITE)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        again = http.post(f"/jobs/{job['id']}/cancel", headers=WRITE)
        assert again.status_code == 409
        assert again.json()["error"] == "invalid_transition"
        assert http.post("/jobs", json=TRIGGER).status_code == 401
        assert http.get("/api/jobs", headers=READ).json()["total"] == 1
    stop_cleanly(server, redis_pid)


def test_served_openapi_is_the_generated_one(
    start_server: ServerFactory, tmp_path: Path, openapi_spec: dict[str, object]
) -> None:
    server = start_server(tmp_path / "redis")
    served = httpx.get(f"{server.base_url}/openapi.json", timeout=5.0)
    assert served.status_code == 200
    assert served.json() == openapi_spec


def test_job_survives_a_restart_on_the_same_data_dir(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "redis"
    first = start_server(data_dir)
    created = httpx.post(f"{first.base_url}/jobs", headers=WRITE, json=TRIGGER, timeout=5.0)
    assert created.status_code == 201
    job = created.json()
    stop_cleanly(first, first.redis_pid())

    second = start_server(data_dir)
    read = httpx.get(f"{second.base_url}/jobs/{job['id']}", headers=READ, timeout=5.0)
    assert read.status_code == 200, read.text
    links = {"links": read.json()["links"]}  # the new server has another port, so other links
    assert read.json() == job | links
    listed = httpx.get(f"{second.base_url}/jobs", headers=READ, timeout=5.0).json()
    assert [item["id"] for item in listed["jobs"]] == [job["id"]]
    # the queue entry and the agents' group survived too, and a cancel still removes the entry
    redis_pid = second.redis_pid()
    with Redis(port=redis_port(redis_pid), decode_responses=True) as redis:
        assert [fields["job_id"] for _, fields in redis.xrange("raibid:jobs")] == [job["id"]]
        assert [group["name"] for group in redis.xinfo_groups("raibid:jobs")] == [GROUP]
        cancelled = httpx.post(
            f"{second.base_url}/jobs/{job['id']}/cancel", headers=WRITE, timeout=5.0
        )
        assert cancelled.status_code == 200
        assert redis.xlen("raibid:jobs") == 0
    stop_cleanly(second, redis_pid)
