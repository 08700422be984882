"""Claim tokens: one job, one attempt, one key; anything else is no token at all."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raibid_api.api.auth import TokenRegistry
from raibid_api.config import AuthSettings
from raibid_api.errors import AuthenticationError, PermissionDeniedError
from raibid_api.jobs.claim_tokens import (
    ClaimGrant,
    is_claim_token,
    mint_claim_token,
    verify_claim_token,
)

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
JOB_ID = "3f2a9c1e-7b4d-4c55-8e0f-0123456789ab"


@given(job_id=st.uuids(), attempt=st.integers(min_value=1, max_value=10_000))
def test_a_minted_token_grants_its_job_and_attempt_under_its_key_only(
    job_id: uuid.UUID, attempt: int
) -> None:
    token = mint_claim_token(KEY, str(job_id), attempt)
    assert is_claim_token(token)
    assert verify_claim_token(KEY, token) == ClaimGrant(str(job_id), attempt)
    assert verify_claim_token(OTHER_KEY, token) is None


def test_the_token_names_the_job_in_its_canonical_form() -> None:
    token = mint_claim_token(KEY, JOB_ID.upper(), 1)
    assert verify_claim_token(KEY, token) == ClaimGrant(JOB_ID, 1)


@pytest.mark.parametrize(
    "tampered",
    [
        lambda t: t.replace(".2.", ".3.", 1),
        lambda t: t.replace(JOB_ID, str(uuid.UUID(int=1)), 1),
        lambda t: t[:-2],
        lambda t: t + "0",
        lambda t: t.replace("rjc1", "rjc2", 1),
        lambda t: t.replace(".2.", ".².", 1),
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t.replace(JOB_ID, "not-a-uuid", 1),
    ],
)
def test_any_change_to_a_token_voids_it(tampered: object) -> None:
    token = mint_claim_token(KEY, JOB_ID, 2)
    assert callable(tampered)
    changed = tampered(token)
    assert changed != token
    assert verify_claim_token(KEY, changed) is None


def registry() -> TokenRegistry:
    settings = AuthSettings.model_validate(
        {"tokens": [{"name": "fleet", "scopes": ["agent"], "value": "fleet-token-1"}]}
    )
    return TokenRegistry(settings)


def test_a_registry_knows_claim_tokens_only_once_given_the_key() -> None:
    token = mint_claim_token(KEY, JOB_ID, 1)
    tokens = registry()
    with pytest.raises(AuthenticationError):
        tokens.authorize_claim(f"Bearer {token}")
    tokens.accept_claim_tokens(KEY)
    assert tokens.authorize_claim(f"Bearer {token}").grant == ClaimGrant(JOB_ID, 1)
    assert tokens.authorize_claim("Bearer fleet-token-1").grant is None


def test_a_claim_token_has_no_scope_for_any_other_route() -> None:
    tokens = registry()
    tokens.accept_claim_tokens(KEY)
    token = f"Bearer {mint_claim_token(KEY, JOB_ID, 1)}"
    for scope in ("agent", "read", "write"):
        with pytest.raises(PermissionDeniedError):
            tokens.authorize(token, scope)
    with pytest.raises(AuthenticationError):
        tokens.authorize_claim(f"Bearer {mint_claim_token(OTHER_KEY, JOB_ID, 1)}")
