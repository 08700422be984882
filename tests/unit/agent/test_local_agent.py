"""The built-in agent's command line and environment: its token in neither argv nor elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path

from raibid_api.agent.local import LocalAgentSpec


def test_the_command_line_names_the_server_and_never_the_token() -> None:
    token = "a-secret-agent-token-0123456789"
    spec = LocalAgentSpec("http://127.0.0.1:8080", token, "local-agent", concurrency=2,
                          workspace=Path("ws"), job_timeout_s=5400.0)  # fmt: skip

    argv = spec.argv()

    assert argv[:4] == [sys.executable, "-m", "raibid_api", "agent"]
    assert argv[argv.index("--server") + 1] == "http://127.0.0.1:8080"
    assert argv[argv.index("--concurrency") + 1] == "2"
    assert argv[argv.index("--job-timeout") + 1] == "5400s"
    assert not any(token in arg for arg in argv)


def test_the_child_gets_its_token_and_none_of_the_server_configuration() -> None:
    spec = LocalAgentSpec("http://127.0.0.1:8080", "a-secret-agent-token-0123456789",
                          "local-agent", concurrency=1, workspace=Path("ws"),
                          job_timeout_s=60.0)  # fmt: skip
    server_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/ci",
        "SSH_AUTH_SOCK": "/run/agent.sock",
        "RAIBID_REDIS__URL": "redis://:hunter2-password@redis:6379/0",
        "RAIBID_WEBHOOKS__GITEA__SECRET": "a-webhook-secret-0123",
        "AWS_SECRET_ACCESS_KEY": "not-for-builds",
    }

    env = spec.environment(server_env)

    assert env == {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/ci",
        "SSH_AUTH_SOCK": "/run/agent.sock",
        "RAIBID_AGENT_TOKEN": "a-secret-agent-token-0123456789",
    }
