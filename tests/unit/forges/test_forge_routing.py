"""Which forge a job is reported to, and which forges the settings configure."""

from __future__ import annotations

from typing import Any

import pytest

from raibid_api.config import load_settings
from raibid_api.domain.jobs import job_links
from raibid_api.forges.clients import CommitStatus, Delivery
from raibid_api.forges.reporting import configured_targets
from raibid_api.forges.routing import ForgeRouter, ForgeTarget, clone_host
from tests.support.factories import make_job


class IdleReporter:
    """A reporter no test calls: routing never talks to a forge."""

    async def report(self, status: CommitStatus) -> Delivery:
        raise AssertionError("routing must not post")

    async def aclose(self) -> None:
        return None


ROUTER = ForgeRouter([
    ForgeTarget("gitea", IdleReporter(), "ci/gitea", "https://git.example.org/"),
    ForgeTarget("github", IdleReporter(), "ci/github", "https://api.github.com"),
])  # fmt: skip


@pytest.mark.parametrize(
    ("url", "host"),
    [("https://git.example.org/acme/w.git", "git.example.org"),
     ("ssh://git@Git.Example.org:2222/acme/w.git", "git.example.org"),
     ("git@github.com:acme/w.git", "github.com"),
     ("file:///srv/git/w.git", None), (None, None)],
)  # fmt: skip
def test_clone_host_is_read_from_every_clone_url_form(url: str | None, host: str | None) -> None:
    assert clone_host(url) == host


@pytest.mark.parametrize(
    ("fields", "forge"),
    [({"forge": "gitea"}, "gitea"), ({"forge": "forgejo"}, None),
     ({"forge": None, "clone_url": "https://git.example.org/acme/w.git"}, "gitea"),
     ({"forge": None, "clone_url": "git@github.com:acme/w.git"}, "github"),
     ({"forge": None, "clone_url": "https://elsewhere.example/acme/w.git"}, None)],
)  # fmt: skip
def test_job_goes_to_its_forge_or_to_the_forge_of_its_clone_host(
    fields: dict[str, Any], forge: str | None
) -> None:
    target = ROUTER.target_for(make_job(**fields))
    assert (target.name if target else None) == forge


def test_report_carries_the_job_page_context_and_rank() -> None:
    job = make_job(status="success", duration=3.0)
    report = ROUTER.report_for(job | {"links": job_links("https://ci.example.org", job["id"])})
    assert report is not None
    assert (report.forge, report.state, report.context, report.final) == (
        "gitea", "success", "ci/gitea", True)  # fmt: skip
    assert report.target_url == f"https://ci.example.org/ui/jobs/{job['id']}"


@pytest.mark.parametrize("fields", [{"commit": None}, {"repo": "noslash"}, {"forge": "forgejo"}])
def test_job_that_cannot_be_reported_makes_no_report(fields: dict[str, Any]) -> None:
    assert ROUTER.report_for(make_job(**fields)) is None


async def test_only_forges_with_a_url_and_a_token_are_configured() -> None:
    settings = load_settings(None, forges={
        "gitea": {"url": "https://git.example.org", "token": "gitea-token-123", "context": "ci"},
        "forgejo": {"url": "https://codeberg.example"},
        "github": {"token": "gh-token-4567"},  # the URL defaults to api.github.com
    })  # fmt: skip
    targets = configured_targets(settings.forges, timeout_s=1.0)
    try:
        assert [(t.name, t.context, t.api_url) for t in targets] == [
            ("gitea", "ci", "https://git.example.org"),
            ("github", "raibid-ci", "https://api.github.com"),
        ]
    finally:
        for target in targets:
            await target.reporter.aclose()
