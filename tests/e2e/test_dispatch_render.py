"""`raibid-api dispatch render`: the agent Job and its Secret, valid, for an example or a real job.

The printed objects are validated like every manifest in deploy/ (the official schemas, strict,
for the oldest and the newest supported Kubernetes); that they are what the dispatcher creates is
tested against the API double in tests/integration/dispatch/test_render.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from raibid_api.app import create_app
from raibid_api.dispatch.manifests import agent_job_name
from raibid_api.dispatch.render import EXAMPLE_JOB_ID, REDACTED_CLAIM
from raibid_api.embedded import EmbeddedRedis
from tests.support.dispatch import base_settings, trigger
from tests.support.manifests import SCHEMA_VERSIONS, pod_spec
from tests.support.processes import clean_env
from tests.support.server_process import raibid_api

pytestmark = pytest.mark.e2e


def write_config(tmp_path: Path, **sections: object) -> Path:
    config = tmp_path / "config.yaml"
    document = {"dispatch": {"mode": "kubernetes"}} | sections
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    return config


def render(*args: str) -> list[dict[str, Any]]:
    result = raibid_api("dispatch", "render", *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


@pytest.mark.parametrize("schema_version", SCHEMA_VERSIONS)
def test_render_prints_a_valid_agent_job_and_its_secret_for_an_example_job(
    tmp_path: Path, schema_version: str
) -> None:
    job, secret = render("--config", str(write_config(tmp_path)))
    for obj in (job, secret):
        kubernetes_validate.validate(obj, schema_version, strict=True)
    name = agent_job_name(EXAMPLE_JOB_ID, 1)
    assert (job["kind"], job["metadata"]["name"]) == ("Job", name)
    assert (secret["kind"], secret["metadata"]["name"]) == ("Secret", name)
    assert secret["metadata"]["ownerReferences"][0]["name"] == name
    assert secret["stringData"] == {"token": REDACTED_CLAIM}
    (agent,) = (pod_spec(job) or {})["containers"]
    assert agent["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}


def test_render_follows_the_configuration(tmp_path: Path) -> None:
    kubernetes = {"namespace": "builds", "image": "registry.example/agent:2.0.0", "cpu": "500m"}
    config = write_config(tmp_path, dispatch={"mode": "kubernetes", "kubernetes": kubernetes})
    job, secret = render("--config", str(config))
    assert job["metadata"]["namespace"] == secret["metadata"]["namespace"] == "builds"
    (agent,) = (pod_spec(job) or {})["containers"]
    assert agent["image"] == "registry.example/agent:2.0.0"
    assert agent["resources"]["requests"]["cpu"] == "500m"


async def test_render_of_a_job_in_redis_names_that_job_and_its_attempt(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str
) -> None:
    app = create_app(base_settings(redis_server.url, prefix, tmp_path))
    async with app.router.lifespan_context(app):
        [job_id] = await trigger(app.state.raibid)
    config = write_config(tmp_path, redis={"url": redis_server.url, "key_prefix": prefix})
    job, secret = render("--config", str(config), "--job-id", job_id)
    assert job["metadata"]["name"] == secret["metadata"]["name"] == agent_job_name(job_id, 1)
    assert job["metadata"]["labels"]["raibid-ci/job-id"] == job_id


@pytest.mark.parametrize(
    ("job_id", "message"),
    [("not-a-uuid", "job id must be a UUID"),
     ("0b6f3c52-2d0e-4d3a-9a61-6c7f44a1d2e9", "no job 0b6f3c52-2d0e-4d3a-9a61-6c7f44a1d2e9")],
)  # fmt: skip
def test_render_refuses_a_job_id_it_cannot_find(
    tmp_path: Path, redis_server: EmbeddedRedis, prefix: str, job_id: str, message: str
) -> None:
    config = write_config(tmp_path, redis={"url": redis_server.url, "key_prefix": prefix})
    result = raibid_api("dispatch", "render", "--config", str(config), "--job-id", job_id,
                        env=clean_env())  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
