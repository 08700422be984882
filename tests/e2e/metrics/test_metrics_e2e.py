"""`GET /metrics` of a real server process, checked by the real Prometheus tools.

`promtool check metrics` lints the live text format, and a real Prometheus (its own config,
port and storage in a temporary folder) scrapes the server and answers a query for one of its
metrics. The tools come from Debian's package (`tests.support.prometheus`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from raibid_api.embedded import free_port
from tests.support.polling import eventually_sync
from tests.support.prometheus import promtool, tool
from tests.support.server_process import READ, READ_TOKEN, TRIGGER, WRITE, Server, ServerFactory


@pytest.fixture
def server(start_server: ServerFactory, tmp_path: Path) -> Server:
    """A server that has made a job, answered it, and refused a path it does not know."""
    server = start_server(tmp_path / "redis")
    job = httpx.post(f"{server.base_url}/jobs", json=TRIGGER, headers=WRITE, timeout=10)
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    assert httpx.get(f"{server.base_url}/jobs/{job_id}", headers=READ).status_code == 200
    assert httpx.get(f"{server.base_url}/no/such/{job_id}", headers=READ).status_code == 404
    return server


def scrape(server: Server) -> str:
    answer = httpx.get(f"{server.base_url}/metrics", headers=READ, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return answer.text


def test_live_metrics_pass_promtool_and_name_no_path_or_job(server: Server) -> None:
    text = scrape(server)
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == ""
    assert checked.stderr.strip() == ""
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    created = ("raibid_http_requests_total",
               (("method", "POST"), ("route", "/jobs"), ("status", "201")))  # fmt: skip
    read = ("raibid_http_requests_total",
            (("method", "GET"), ("route", "/jobs/{job_id}"), ("status", "200")))  # fmt: skip
    unmatched = ("raibid_http_requests_total",
                 (("method", "GET"), ("route", "unmatched"), ("status", "404")))  # fmt: skip
    assert samples[created] == samples[read] == samples[unmatched] == 1.0
    assert samples[("raibid_jobs", (("status", "pending"),))] == 1.0
    assert samples[("raibid_queue_depth", ())] == 1.0
    assert samples[("raibid_jobs_created_total", (("event", "manual"),))] == 1.0
    assert samples[("raibid_dependency_ready", (("dependency", "redis"),))] == 1.0
    # no raw path, no job id became a label value
    assert "/no/such" not in text
    job_ids = httpx.get(f"{server.base_url}/jobs", headers=READ).json()["jobs"]
    assert job_ids
    assert all(job["id"] not in text for job in job_ids)


def test_metrics_need_the_read_scope(server: Server) -> None:
    answer = httpx.get(f"{server.base_url}/metrics")
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthenticated"


@pytest.fixture
def prometheus(server: Server, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping ``server`` every second; yields its base URL."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    target = server.base_url.removeprefix("http://")
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "raibid-api",
                        "metrics_path": "/metrics",
                        "authorization": {"credentials": READ_TOKEN},
                        "static_configs": [{"targets": [target]}],
                    }
                ],
            }
        )
    )
    log = tmp_path / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(tool("prometheus")), f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_real_prometheus_scrapes_the_server_and_answers_a_query(prometheus: str) -> None:
    found: list[dict[str, Any]] = []

    def answered() -> bool:
        try:
            answer = httpx.get(
                f"{prometheus}/api/v1/query",
                params={"query": 'raibid_jobs_created_total{event="manual"}'},
            )
        except httpx.TransportError:
            return False
        if answer.status_code != 200:
            return False
        found[:] = answer.json()["data"]["result"]
        return bool(found)

    eventually_sync(answered, 60.0, "Prometheus to scrape raibid_jobs_created_total")
    (series,) = found
    labels = series["metric"]
    assert labels["__name__"] == "raibid_jobs_created_total"
    assert (labels["event"], labels["job"]) == ("manual", "raibid-api")
    assert series["value"][1] == "1"
