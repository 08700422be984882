"""The domain error tree of raibid-api. No HTTP here: `api/errors.py` maps each class to a status.

Every class carries a stable machine-readable ``code`` (the ``error`` field of the JSON error body)
and a human message that never contains a secret.

    RaibidError
    ├── ConfigError                  invalid configuration (startup, `config check`)
    ├── InvalidInputError            a client sent something malformed
    │   ├── InvalidJobIdError        a job id that is not a UUID
    │   ├── InvalidCursorError       a pagination cursor that was forged, damaged or misused
    │   ├── InvalidJSONError         a body that is not JSON (or not a JSON object)
    │   └── InvalidWebhookError      a webhook payload that cannot be turned into an event
    ├── NotFoundError                something named by the client does not exist
    │   └── JobNotFoundError
    ├── ConflictError                the request does not fit the current state
    │   └── TransitionConflictError  a job is not in the state the transition leaves
    ├── AuthenticationError          missing or invalid bearer token
    │   ├── JobTokenError            a job token that is not the job's current one
    │   ├── SignatureMissingError    an unsigned webhook where signatures are required
    │   └── SignatureMismatchError   a webhook signature that does not verify
    ├── PermissionDeniedError        a valid token without the scope the route needs
    ├── PayloadTooLargeError         a body over the configured limit
    ├── UnsupportedMediaTypeError    a body in a content type the route does not take
    ├── RateLimitedError             too many requests from one source; carries ``retry_after``
    └── ServiceUnavailableError      a dependency (Redis) does not answer
"""

from __future__ import annotations

from typing import Any, ClassVar


class RaibidError(Exception):
    """Base of every error raibid-api raises on purpose."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(RaibidError):
    """The configuration is invalid; ``problems`` lists each key path with its reason."""

    code = "invalid_config"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class InvalidInputError(RaibidError):
    """A client sent a value that is malformed."""

    code = "invalid_input"


class InvalidJobIdError(InvalidInputError):
    """A job id that is not a UUID."""

    code = "invalid_job_id"


class InvalidCursorError(InvalidInputError):
    """A pagination cursor that this server did not issue for this query."""

    code = "invalid_cursor"


class InvalidJSONError(InvalidInputError):
    """A request body that is not a JSON object."""

    code = "invalid_json"


class InvalidWebhookError(InvalidInputError):
    """A webhook payload that cannot be parsed into an event."""

    code = "invalid_webhook"


class NotFoundError(RaibidError):
    """Something the client named does not exist."""

    code = "not_found"


class JobNotFoundError(NotFoundError):
    """No job with this id (never existed, or expired after its retention)."""

    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found", job_id=job_id)


class ConflictError(RaibidError):
    """The request does not fit the current state of the resource."""

    code = "conflict"


class TransitionConflictError(ConflictError):
    """A job is not in the state a transition expects to leave; carries the current job."""

    code = "invalid_transition"

    def __init__(self, message: str, current: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.current = current


class AuthenticationError(RaibidError):
    """Missing or invalid credentials."""

    code = "unauthenticated"


class JobTokenError(AuthenticationError):
    """A job token for another job, an earlier attempt, or an expired lease."""

    code = "invalid_job_token"


class SignatureMissingError(AuthenticationError):
    """A webhook delivery without a signature where one is required."""

    code = "signature_missing"


class SignatureMismatchError(AuthenticationError):
    """A webhook signature that does not match the body with any configured secret."""

    code = "signature_mismatch"


class TokenInUrlError(AuthenticationError):
    """An API token in a URL (``?token=``), where it would end up in logs and browser history."""

    code = "token_in_url"


class InvalidStreamTokenError(AuthenticationError):
    """A ``?token=`` that is no stream token this deployment signed."""

    code = "invalid_stream_token"


class StreamTokenExpiredError(AuthenticationError):
    """A stream token past its lifetime."""

    code = "stream_token_expired"


class PermissionDeniedError(RaibidError):
    """Valid credentials that lack the scope the route needs."""

    code = "forbidden"


class StreamTokenScopeError(PermissionDeniedError):
    """A stream token minted for another job or event filter."""

    code = "stream_token_scope"


class PayloadTooLargeError(RaibidError):
    """A request body over the configured limit."""

    code = "payload_too_large"


class NotAcceptableError(RaibidError):
    """A request that does not accept the only content type the route answers with."""

    code = "not_acceptable"


class UnsupportedMediaTypeError(RaibidError):
    """A request body in a content type the route does not accept."""

    code = "unsupported_media_type"


class RateLimitedError(RaibidError):
    """Too many requests from one source; ``retry_after`` is in whole seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailableError(RaibidError):
    """A dependency the request needs (Redis) does not answer."""

    code = "service_unavailable"
