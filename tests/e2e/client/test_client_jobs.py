"""`raibid-api jobs list|show|cancel|retry|run` against a real server process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raibid_api.embedded import free_port
from tests.support.client_process import TRIGGER, client_env, run_client, run_on_terminal
from tests.support.server_process import OPERATOR_TOKEN, READ_TOKEN, Server

pytestmark = pytest.mark.e2e


def test_run_list_show_cancel_retry_print_plain_text_when_not_a_terminal(server: Server) -> None:
    env = client_env(server.base_url, OPERATOR_TOKEN)
    run = run_client("jobs", "run", *TRIGGER, env=env)
    assert run.returncode == 0, run.stderr
    job_id, status = run.stdout.strip().split("\t")
    assert status == "pending"

    listed = run_client("jobs", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [r[:5] for r in rows] == [[job_id, "pending", "acme/widgets", "main", ""]]
    assert "\x1b[" not in listed.stdout

    shown = run_client("jobs", "show", job_id, env=env)
    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split("\t", 1) for line in shown.stdout.splitlines())
    assert fields["id"] == job_id
    assert fields["status"] == "pending"
    assert fields["repo"] == "acme/widgets"

    cancelled = run_client("jobs", "cancel", job_id, "--reason", "not today", env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"{job_id}\tcancelled\n"

    retried = run_client("jobs", "retry", job_id, env=env)
    assert retried.returncode == 0, retried.stderr
    new_id, new_status = retried.stdout.strip().split("\t")
    assert new_id != job_id
    assert new_status == "pending"

    as_json = json.loads(run_client("jobs", "show", new_id, "--json", env=env).stdout)
    assert as_json["retry_of"] == job_id
    page = json.loads(run_client("jobs", "list", "--status", "cancelled", "--json", env=env).stdout)
    assert [job["id"] for job in page["jobs"]] == [job_id]
    assert page["jobs"][0]["reason"] == "not today"


def test_a_terminal_gets_a_table_in_colour(server: Server) -> None:
    env = client_env(server.base_url, OPERATOR_TOKEN)
    job_id = run_client("jobs", "run", *TRIGGER, env=env).stdout.split("\t")[0]
    status, output = run_on_terminal("jobs", "list", env=env)
    assert status == 0, output
    assert "STATUS" in output
    assert job_id in output
    assert "\x1b[33mpending" in output  # yellow
    assert "1 of 1 jobs" in output


def test_errors_are_one_line_and_a_status_never_a_traceback(server: Server) -> None:
    reader = client_env(server.base_url, READ_TOKEN)
    unknown = run_client("jobs", "show", "00000000-0000-4000-8000-000000000000", env=reader)
    assert unknown.returncode == 4
    assert unknown.stderr.startswith("error: ")
    assert "404 job_not_found" in unknown.stderr
    assert unknown.stderr.count("\n") == 1

    elsewhere = run_client("jobs", "cancel", "x/../../jobs", env=reader)  # no call is made
    assert elsewhere.returncode == 2
    assert "job id must be a UUID" in elsewhere.stderr

    refused = run_client("jobs", "run", *TRIGGER, env=reader)  # a read-only token
    assert refused.returncode == 4
    assert "403 forbidden" in refused.stderr

    wrong = client_env(server.base_url, "not-a-known-token-31337")
    unauthenticated = run_client("jobs", "list", env=wrong)
    assert unauthenticated.returncode == 4
    assert "refused the credentials" in unauthenticated.stderr
    assert "31337" not in unauthenticated.stderr + unauthenticated.stdout

    anonymous = run_client("jobs", "list", env=client_env(server.base_url, None))
    assert anonymous.returncode == 4
    assert "401 unauthenticated" in anonymous.stderr

    helped = run_client("jobs", "list", "--help", env=client_env(server.base_url, OPERATOR_TOKEN))
    assert helped.returncode == 0
    assert "--token-file" in helped.stdout
    assert OPERATOR_TOKEN not in helped.stdout

    nobody = client_env(f"http://127.0.0.1:{free_port()}", OPERATOR_TOKEN)
    for args in (("jobs", "list"), ("logs", "-f", "00000000-0000-4000-8000-000000000000")):
        down = run_client(*args, env=nobody)
        assert down.returncode == 5, down.stderr
        assert "connection refused" in down.stderr
        assert down.stderr.count("\n") == 1
    for result in (unknown, refused, unauthenticated, anonymous):
        assert "Traceback" not in result.stderr
        assert OPERATOR_TOKEN not in result.stderr
        assert READ_TOKEN not in result.stderr


def test_the_token_may_come_from_a_file_and_a_bad_url_is_a_usage_error(
    server: Server, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(OPERATOR_TOKEN + "\n")
    env = client_env(server.base_url, None)
    listed = run_client("jobs", "list", "--token-file", str(token_file), env=env)
    assert listed.returncode == 0, listed.stderr

    missing = run_client("jobs", "list", "--token-file", str(tmp_path / "nope"), env=env)
    assert missing.returncode == 2
    assert "cannot read the token file" in missing.stderr

    bad = run_client("jobs", "list", "--url", "ftp://example.test", env=env)
    assert bad.returncode == 2
    assert "http:// or https://" in bad.stderr
