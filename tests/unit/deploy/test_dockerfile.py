"""Static checks of deploy/docker/Dockerfile and its build-context filter.

Docker cannot run where these tests run, so the image is not built here; what is checked is what
the manifests rely on: the user, the working directory, the command, the absence of a
HEALTHCHECK, and that the context filter lets in every path the Dockerfile copies.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import PurePosixPath

from tests.support.manifests import DEPLOY, KUBERNETES, find, pod_spec, target_manifests
from tests.support.paths import REPO_ROOT

DOCKERFILE = DEPLOY / "docker/Dockerfile"
CONTEXT_FILTER = DEPLOY / "docker/Dockerfile.dockerignore"
KEDA = target_manifests(KUBERNETES / "overlays/keda")

Instruction = tuple[str, str]


def _instructions() -> list[Instruction]:
    lines: list[Instruction] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line.removesuffix(chr(92)).strip()}".strip()
        if not line.endswith("\\"):
            keyword, _, argument = pending.partition(" ")
            lines.append((keyword.upper(), argument.strip()))
            pending = ""
    return lines


def _stages() -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _last(stage: list[Instruction], keyword: str) -> str:
    return [argument for key, argument in stage if key == keyword][-1]


def _ignored(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the context (last matching pattern wins)."""
    patterns = [
        line.strip()
        for line in CONTEXT_FILTER.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        glob = pattern.removeprefix("!").strip("/")
        if any(fnmatch.fnmatchcase(candidate, glob) for candidate in candidates):
            ignored = not keep
    return ignored


FINAL = _stages()[-1]
SERVER_POD = pod_spec(find(KEDA, "Deployment", "raibid-api")) or {}
AGENT_POD = pod_spec(find(KEDA, "ScaledJob", "raibid-agent")) or {}


def test_every_stage_builds_on_python_3_11_slim() -> None:
    (default,) = [a for k, a in _instructions() if k == "ARG" and a.startswith("PYTHON_IMAGE=")]
    assert default.removeprefix("PYTHON_IMAGE=").startswith("python:3.11-slim")
    for stage in _stages():
        assert stage[0][1].split(" AS ")[0].endswith("${PYTHON_IMAGE}")


def test_image_declares_no_healthcheck() -> None:
    assert [key for key, _ in _instructions() if key == "HEALTHCHECK"] == []


def test_final_stage_runs_as_the_numeric_non_root_user_the_pods_expect() -> None:
    user, _, group = _last(FINAL, "USER").partition(":")
    assert user.isdigit()
    assert int(user) > 0
    for pod in (SERVER_POD, AGENT_POD):
        context = pod["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == (int(user), int(group))


def test_final_stage_installs_git_and_takes_only_the_venv_from_the_build() -> None:
    installs = " ".join(argument for key, argument in FINAL if key == "RUN")
    assert " git " in f" {installs} "
    copies = [argument for key, argument in FINAL if key == "COPY"]
    assert copies == ["--from=venv /opt/raibid /opt/raibid"]


def test_default_command_serves_the_config_the_deployment_mounts() -> None:
    (server,) = SERVER_POD["containers"]
    assert json.loads(_last(FINAL, "ENTRYPOINT"))[-1] == "raibid-api"
    assert json.loads(_last(FINAL, "CMD")) == server["args"]


def test_agent_pod_mounts_the_image_working_directory_and_home() -> None:
    (agent,) = AGENT_POD["containers"]
    environment = _last(FINAL, "ENV")
    mounts = {m["mountPath"] for m in agent["volumeMounts"]}
    assert agent["workingDir"] == _last(FINAL, "WORKDIR")
    assert "HOME=/home/raibid" in environment.split()
    assert {"/workspace", "/home/raibid", "/tmp"} <= mounts


def test_context_filter_admits_every_path_the_dockerfile_copies() -> None:
    sources = [
        source
        for stage in _stages()
        for key, argument in stage
        if key == "COPY" and not argument.startswith("--from")
        for source in argument.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
        assert not _ignored(source.removeprefix("./")), source


def test_context_filter_keeps_local_state_out_of_the_build() -> None:
    for path in (".venv", ".git", "tests", "deploy", ".raibid", "src/raibid_api/__pycache__/a.pyc"):
        assert _ignored(path), path
    assert not _ignored("src/raibid_api/config.py")


def test_the_image_installs_the_locked_dependencies_then_the_wheel_alone() -> None:
    (venv,) = [stage for stage in _stages() if stage[0][1].endswith(" AS venv")]
    copies = [argument for key, argument in venv if key == "COPY"]
    install = " ".join(argument for key, argument in venv if key == "RUN" and "pip" in argument)
    assert "requirements.lock /tmp/requirements.lock" in copies
    assert "pip install -r /tmp/requirements.lock" in install
    assert "pip install --no-deps /dist/*.whl" in install
