"""Bearer tokens and scopes: who may call which route."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from raibid_api.config import AuthSettings
from raibid_api.dispatch.identity import PodIdentity
from raibid_api.errors import AuthenticationError, PermissionDeniedError
from raibid_api.jobs.claim_tokens import ClaimGrant, is_claim_token, verify_claim_token


@dataclass(frozen=True)
class Principal:
    """Who is calling: a configured token's name and scopes, anonymous, or a claim token.

    A claim token (``dispatch.mode: kubernetes``) has no scope: its ``grant`` is the one claim
    it allows. Nor has an agent pod's ServiceAccount token (``dispatch.mode: keda``): its ``pod``
    may claim one job.
    """

    name: str
    scopes: frozenset[str]
    grant: ClaimGrant | None = None
    pod: PodIdentity | None = None


ANONYMOUS_READER = Principal("anonymous", frozenset({"read"}))


def token_digest(token: str) -> str:
    """The sha256 hex a token is stored and compared as."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    """The configured tokens, held only as digests and compared in constant time."""

    def __init__(self, settings: AuthSettings) -> None:
        self._anonymous_read = settings.anonymous_read
        self._tokens: list[tuple[bytes, Principal]] = []
        self._claim_key: bytes | None = None
        for token in settings.tokens:
            digest = (
                token.sha256.lower()
                if token.sha256
                else token_digest(token.value.get_secret_value() if token.value else "")
            )
            self._tokens.append((digest.encode(), Principal(token.name, frozenset(token.scopes))))

    def add(self, name: str, token: str, scopes: frozenset[str]) -> None:
        """Accept one more token (the built-in agent's, made at start-up)."""
        self._tokens.append((token_digest(token).encode(), Principal(name, scopes)))

    def accept_claim_tokens(self, key: bytes) -> None:
        """Accept claim tokens signed with ``key`` (`raibid_api.jobs.claim_tokens`)."""
        self._claim_key = key

    def identify(self, authorization: str | None) -> Principal | None:
        """The principal an ``Authorization`` header names; None when there is none.

        Raises:
            AuthenticationError: a header that is not a known bearer token.
        """
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("use Authorization: Bearer <token>")
        if self._claim_key is not None and is_claim_token(token.strip()):
            return self._claim_principal(self._claim_key, token.strip())
        presented = token_digest(token.strip()).encode()
        found: Principal | None = None
        for digest, principal in self._tokens:
            # every digest is compared, so timing does not tell which token nearly matched
            if hmac.compare_digest(digest, presented):
                found = principal
        if found is None:
            raise AuthenticationError("unknown token")
        return found

    @staticmethod
    def _claim_principal(key: bytes, token: str) -> Principal:
        grant = verify_claim_token(key, token)
        if grant is None:
            raise AuthenticationError("unknown token")
        return Principal(f"claim token of job {grant.job_id}", frozenset(), grant)

    def authorize_claim(self, authorization: str | None) -> Principal:
        """The caller of a claim: a token with the ``agent`` scope, or a claim token.

        Raises:
            AuthenticationError: no token, or an unknown one.
            PermissionDeniedError: a known token without the ``agent`` scope.
        """
        principal = self.identify(authorization)
        if principal is not None and principal.grant is not None:
            return principal
        return self.authorize(authorization, "agent")

    def authorize(self, authorization: str | None, scope: str) -> Principal:
        """The caller, if it may use ``scope``.

        Raises:
            AuthenticationError: no token where one is needed, or an unknown one.
            PermissionDeniedError: a known token without ``scope``.
        """
        principal = self.identify(authorization)
        if principal is None:
            if scope == "read" and self._anonymous_read:
                return ANONYMOUS_READER
            raise AuthenticationError(f"this route needs a bearer token with scope {scope!r}")
        if scope not in principal.scopes:
            raise PermissionDeniedError(
                f"token {principal.name!r} lacks scope {scope!r}", scopes=sorted(principal.scopes)
            )
        return principal
