"""Signed forge deliveries over real HTTP to `python -m raibid_api serve` (embedded Redis)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from raibid_api.embedded import free_port
from tests.support.polling import eventually_sync
from tests.support.server_process import READ, READ_TOKEN, launch_server
from tests.support.webhook_samples import SECRET, fixture_delivery

pytestmark = pytest.mark.e2e
START_TIMEOUT = 20.0


def answers_ready(process: subprocess.Popen[bytes], base_url: str, log: Path) -> bool:
    if process.poll() is not None:
        pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()}")
    try:
        return httpx.get(f"{base_url}/ready", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A served raibid-api whose forges sign with the test secret; its base URL."""
    tmp_path = tmp_path_factory.mktemp("webhook-e2e")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    config = {
        "server": {"host": "127.0.0.1", "port": port, "public_url": base_url},
        "redis": {"url": None, "data_dir": str(tmp_path / "redis")},
        "auth": {"tokens": [{"name": "reader", "scopes": ["read"], "value": READ_TOKEN}]},
        "webhooks": {
            "gitea": {"secret": SECRET},
            "github": {"secret": SECRET},
            "spool_dir": str(tmp_path / "spool"),
        },
        "dispatch": {"mode": "none"},
        "logging": {"level": "warning", "format": "json"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    launched = launch_server(tmp_path, path, port)
    process = launched.process
    try:
        eventually_sync(
            lambda: answers_ready(process, base_url, launched.log), START_TIMEOUT, "/ready"
        )
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_signed_gitea_push_over_real_http_becomes_one_job(server: str) -> None:
    headers, body = fixture_delivery("gitea", "gitea/push-1.json")
    with httpx.Client(base_url=server, timeout=5.0) as http:
        answer = http.post("/webhook/gitea", content=body, headers=headers)
        again = http.post("/webhook/gitea", content=body, headers=headers)
        job = http.get(f"/jobs/{answer.json()['job_id']}", headers=READ).json()
        journal = http.get("/webhook/deliveries", headers=READ).json()["deliveries"]

    assert answer.status_code == 202, answer.text
    assert answer.json()["status_url"] == f"{server}/jobs/{job['id']}"
    assert again.status_code == 200
    assert again.json() == answer.json() | {"duplicate": "delivery"}
    assert job["repo"] == "Test-CI/multi-line-secrets"
    assert job["commit"] == "29be01c073851cf0db0c6a466e396b725a670453"
    assert job["branch"] == "main"
    assert job["event"] == "push"
    assert job["delivery_id"] == headers["x-gitea-delivery"]
    assert job["status"] == "pending"
    assert [e["decision"] for e in journal[:2]] == ["duplicate", "created"]
    assert journal[0]["source"] == "127.0.0.1"


def test_forged_github_delivery_over_real_http_is_refused(server: str) -> None:
    headers, body = fixture_delivery("github", "github/push-1.json", secret="not-the-secret")
    with httpx.Client(base_url=server, timeout=5.0) as http:
        before = http.get("/jobs", headers=READ).json()["total"]
        answer = http.post("/webhook/github", content=body, headers=headers)
        after = http.get("/jobs", headers=READ).json()["total"]
        journal = http.get("/webhook/deliveries", headers=READ).json()["deliveries"]

    assert answer.status_code == 401
    assert answer.json()["error"] == "signature_mismatch"
    assert after == before
    assert (journal[0]["decision"], journal[0]["reason"]) == ("rejected", "signature_mismatch")
