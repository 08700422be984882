"""What the server takes from a TokenReview's status: a pod of the agents' account, or nothing."""

from __future__ import annotations

from typing import Any

import pytest

from raibid_api.dispatch.identity import (
    PodIdentity,
    identity_of,
    looks_like_service_account_token,
)

AGENTS = "system:serviceaccount:ci:raibid-agent"
AUDIENCE = "raibid-api"


def status(**changes: Any) -> dict[str, Any]:
    reviewed: dict[str, Any] = {
        "authenticated": True,
        "audiences": [AUDIENCE],
        "user": {
            "username": AGENTS,
            "uid": "5b2c0f0e-0000-4000-8000-000000000001",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:ci"],
            "extra": {
                "authentication.kubernetes.io/pod-name": ["raibid-agent-x7k2p-abcde"],
                "authentication.kubernetes.io/pod-uid": ["0d4f7a4e-1111-4222-8333-444455556666"],
            },
        },
    }
    return reviewed | changes


def test_an_authenticated_agent_pod_token_names_its_pod() -> None:
    assert identity_of(status(), AUDIENCE, AGENTS) == PodIdentity(
        "0d4f7a4e-1111-4222-8333-444455556666", "raibid-agent-x7k2p-abcde", AGENTS
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"authenticated": False},
        {"authenticated": "true"},
        {"audiences": ["https://kubernetes.default.svc"]},
        {"audiences": []},
        {"user": {**status()["user"], "username": "system:serviceaccount:ci:default"}},
        {"user": {**status()["user"], "extra": {}}},
        {"user": {}},
    ],
    ids=["not-authenticated", "not-a-boolean", "other-audience", "no-audience",
         "other-account", "not-bound-to-a-pod", "no-user"],
)  # fmt: skip
def test_anything_short_of_that_vouches_for_nothing(changes: dict[str, Any]) -> None:
    assert identity_of(status(**changes), AUDIENCE, AGENTS) is None


@pytest.mark.parametrize(
    ("token", "expected"),
    [("eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJ4In0.c2ln", True),
     ("rjc1.3f2a9c1e-7b4d-4c55-8e0f-0123456789ab.1.00", False),
     ("agent-token-0123456789", False), ("eyJonly.two", False)],
)  # fmt: skip
def test_only_jwt_shaped_tokens_go_to_the_token_review(token: str, expected: bool) -> None:
    assert looks_like_service_account_token(token) is expected
