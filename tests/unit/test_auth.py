from __future__ import annotations

import pytest

from raibid_api.api.auth import ANONYMOUS_READER, TokenRegistry, token_digest
from raibid_api.config import AuthSettings
from raibid_api.errors import AuthenticationError, PermissionDeniedError


def registry(anonymous_read: bool = False) -> TokenRegistry:
    return TokenRegistry(
        AuthSettings.model_validate(
            {
                "anonymous_read": anonymous_read,
                "tokens": [
                    {"name": "reader", "scopes": ["read"], "sha256": token_digest("r-token-1")},
                    {"name": "admin", "scopes": ["read", "write"], "value": "w-token-1"},
                ],
            }
        )
    )


def test_token_given_by_value_or_digest_is_known() -> None:
    tokens = registry()
    assert tokens.authorize("Bearer r-token-1", "read").name == "reader"
    assert tokens.authorize("bearer w-token-1", "write").name == "admin"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Bearer nope", "r-token-1"])
def test_missing_or_unknown_credentials_are_refused(header: str | None) -> None:
    with pytest.raises(AuthenticationError):
        registry().authorize(header, "read")


def test_token_without_the_scope_is_forbidden() -> None:
    with pytest.raises(PermissionDeniedError, match="lacks scope 'write'"):
        registry().authorize("Bearer r-token-1", "write")


def test_anonymous_read_opens_reads_only() -> None:
    tokens = registry(anonymous_read=True)
    assert tokens.authorize(None, "read") == ANONYMOUS_READER
    with pytest.raises(AuthenticationError):
        tokens.authorize(None, "write")
    with pytest.raises(AuthenticationError):
        tokens.authorize("Bearer wrong", "read")
