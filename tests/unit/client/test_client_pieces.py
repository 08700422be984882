"""The terminal client's pure pieces: exit statuses, URL checks, plain output."""

from __future__ import annotations

import io

import pytest

from raibid_api.client import exits
from raibid_api.client.http import Connection, check_url
from raibid_api.client.output import Output, duration, where


@pytest.mark.parametrize(("status", "code"), [("success", 0), ("failed", 1), ("cancelled", 3)])
def test_a_followed_job_ends_the_command_with_its_outcome(status: str, code: int) -> None:
    assert exits.of_job(status) == code


def test_the_statuses_are_distinct() -> None:
    codes = [exits.SUCCESS, exits.FAILED, exits.USAGE, exits.CANCELLED, exits.REFUSED,
             exits.UNREACHABLE, exits.INTERRUPTED]  # fmt: skip
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize(
    "url",
    ["ftp://ci.example.test", "ci.example.test", "http://", "https://user:pw@ci.example.test"],
)
def test_only_plain_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError, match="server URL"):
        check_url(url)


def test_a_trailing_slash_is_dropped_and_the_token_never_shows_in_a_repr() -> None:
    assert check_url("https://ci.example.test/raibid/") == "https://ci.example.test/raibid"
    assert "s3cr3t" not in repr(Connection("https://ci.example.test", "s3cr3t"))


def test_plain_output_is_tab_separated_one_line_per_job() -> None:
    jobs = [
        {"id": "a", "status": "failed", "repo": "o/n", "branch": "main", "commit": "f" * 40,
         "event": "push", "created_at": "2026-12-05T08:00:00Z", "duration": 65.4},
        {"id": "b", "status": "running", "repo": "o/n", "branch": "fix", "pull_request": 7,
         "commit": None, "event": "pull_request", "created_at": "2026-12-05T08:01:00Z"},
        {"id": "c", "status": "success", "repo": "o/n", "tag": "v1.0", "event": "tag",
         "created_at": "2026-12-05T08:02:00Z", "duration": 3.0},
    ]  # fmt: skip
    out = io.StringIO()
    Output(stream=out).jobs(jobs, 3, {})
    assert out.getvalue().splitlines() == [
        "a\tfailed\to/n\tmain\tffffffffffff\tpush\t2026-12-05T08:00:00Z\t1m05s",
        "b\trunning\to/n\t#7 (fix)\t\tpull_request\t2026-12-05T08:01:00Z\t",
        "c\tsuccess\to/n\tv1.0\t\ttag\t2026-12-05T08:02:00Z\t3s",
    ]


def test_show_prints_one_field_per_line_on_one_line_each() -> None:
    out = io.StringIO()
    Output(stream=out).job({"id": "a", "status": "failed", "message": "two\nlines\tand a tab"})
    assert out.getvalue() == "id\ta\nstatus\tfailed\nmessage\ttwo lines and a tab\n"


def test_where_and_duration_of_odd_jobs() -> None:
    assert where({"ref": "refs/heads/x"}) == "refs/heads/x"
    assert duration({"duration": None}) == ""
    assert duration({"duration": 0.4}) == "0s"
