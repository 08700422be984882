"""What each recorded payload in ``tests/fixtures/webhooks`` must become, field by field."""

from __future__ import annotations

from raibid_api.webhooks.events import Ignored, IgnoreReason, WebhookEvent
from tests.support.webhook_samples import GITEA_EVENTS, GITHUB_EVENTS, Forge

# Values read in the payload files themselves.
EXPECTED: dict[str, WebhookEvent | Ignored] = {
    "gitea/push-1.json": WebhookEvent(
        kind="push",
        forge="gitea",
        repo="Test-CI/multi-line-secrets",
        clone_url="http://127.0.0.1:3000/Test-CI/multi-line-secrets.git",
        ref="refs/heads/main",
        branch="main",
        commit="29be01c073851cf0db0c6a466e396b725a670453",
        author="6543",
        pusher="test-user",
        message="add some text",
        # total_commits == 3 == len(commits): the lists are complete.
        changed_paths=frozenset({"aaa", "aa"}),
    ),
    "gitea/push-2.json": WebhookEvent(
        kind="push",
        forge="gitea",
        repo="example/example",
        clone_url="http://localhost:3000/example/example.git",
        ref="refs/heads/master",
        branch="master",
        commit="67b56589a45103f891bdee7c0546e5d40bc02001",
        author="example",
        pusher="example",
        message="example",
    ),
    "gitea/push-3.json": WebhookEvent(
        kind="push",
        forge="gitea",
        repo="meisam/woodpecktester",
        clone_url="https://codeberg.org/meisam/woodpecktester.git",
        ref="refs/heads/fdsafdsa",
        branch="fdsafdsa",
        commit="28c3613ae62640216bea5e7dc71aa65356e4298b",
        author="meisam",
        pusher="6543",
        message="Delete '.woodpecker/.check.yml'",
    ),
    "gitea/create-1.json": Ignored(IgnoreReason.REF_EVENT),
    "gitea/delete-1.json": Ignored(IgnoreReason.REF_EVENT),
    "gitea/pull_request-1.json": WebhookEvent(
        kind="pull_request",
        forge="gitea",
        repo="example/example",
        clone_url="http://localhost:3000/example2/example.git",
        ref="refs/pull/2/head",
        branch="master",
        target_branch="master",
        commit="48e773f892a831faa47c0a160d1b7f0cd369ae2a",
        pull_request=2,
        action="opened",
        pusher="example2",
        message="update",
    ),
    "gitea/pull_request-2.json": WebhookEvent(
        kind="pull_request",
        forge="gitea",
        repo="Test-CI/multi-line-secrets",
        clone_url="http://127.0.0.1:3000/Test-CI/multi-line-secrets.git",
        ref="refs/pull/2/head",
        branch="test-patch-1",
        target_branch="main",
        commit="788ed8d02d3b7fcfcf6386dbcbca696aa1d4dc25",
        pull_request=2,
        action="synchronized",
        pusher="test",
        message="New Pull",
    ),
    "gitea/pull_request-3.json": Ignored(IgnoreReason.PULL_REQUEST_ACTION),
    "github/push-1.json": WebhookEvent(
        kind="push",
        forge="github",
        repo="Codertocat/Hello-World",
        clone_url="https://github.com/Codertocat/Hello-World.git",
        ref="refs/heads/master",
        branch="master",
        commit="6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        author="Codertocat",
        pusher="Codertocat",
        message="Initial commit",
    ),
    "github/push-2.json": Ignored(IgnoreReason.REF_DELETED),
    "github/ping-1.json": Ignored(IgnoreReason.PING),
    "github/pull_request-1.json": WebhookEvent(
        kind="pull_request",
        forge="github",
        repo="Codertocat/Hello-World",
        clone_url="https://github.com/Codertocat/Hello-World.git",
        ref="refs/pull/2/head",
        branch="changes",
        target_branch="master",
        commit="ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        pull_request=2,
        action="synchronize",
        pusher="Codertocat",
        message="Update the README with new information.",
    ),
}

REPOS = {
    "gitea/create-1.json": "gordon/hello-world",
    "gitea/delete-1.json": "example/example",
    "gitea/pull_request-3.json": "anbraten/test-repo",
    "github/push-2.json": "Codertocat/Hello-World",
    "github/ping-1.json": "Octocoders/Hello-World",
}

CASES: list[tuple[Forge, str]] = [
    *((forge, name) for name in GITEA_EVENTS for forge in ("gitea", "forgejo")),
    *(("github", name) for name in GITHUB_EVENTS),
]
