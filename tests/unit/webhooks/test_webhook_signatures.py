"""Signature checks: one contract for every adapter, then the helpers' own edge cases."""

from __future__ import annotations

import pytest

from raibid_api.config import WebhookSettings
from raibid_api.errors import InvalidWebhookError, SignatureMismatchError, SignatureMissingError
from raibid_api.webhooks.intake import credentials_for, read_delivery
from raibid_api.webhooks.registry import ADAPTERS
from raibid_api.webhooks.signatures import (
    SignatureResult,
    combine,
    hmac_sha256_hex,
    verify_authorization,
    verify_hex_digest,
    verify_hub_signature,
)
from tests.support.webhook_samples import (
    OTHER_SECRET,
    SECRET,
    Forge,
    delivery_headers,
    fixture_bytes,
    hex_hmac,
    make_settings,
)

FORGES: list[Forge] = ["gitea", "forgejo", "github"]
BODY = fixture_bytes("gitea/push-1.json")
AUTHORIZATION = "Bearer webhook-test-authorization"


def _with_digest(forge: Forge, digest: str | None, body: bytes = BODY) -> dict[str, str]:
    """A push delivery whose every HMAC-SHA256 header carries ``digest`` (None: no headers)."""
    headers = delivery_headers(forge, "push", body, secret=None)
    for name in ("x-gitea-signature", "x-gogs-signature", "x-forgejo-signature"):
        if name in headers:
            headers[name] = digest or ""
    headers["x-hub-signature-256"] = f"sha256={digest or ''}"
    if digest is None:
        for name in ("x-gitea-signature", "x-forgejo-signature", "x-hub-signature-256"):
            headers.pop(name, None)
    return headers


def _read(forge: Forge, headers: dict[str, str], settings: WebhookSettings) -> SignatureResult:
    return read_delivery(ADAPTERS[forge], headers, BODY, settings).signature


@pytest.fixture(params=FORGES)
def forge(request: pytest.FixtureRequest) -> Forge:
    value: Forge = request.param
    return value


def test_valid_signature_is_accepted(forge: Forge, signed_settings: WebhookSettings) -> None:
    assert _read(forge, _with_digest(forge, hex_hmac(SECRET, BODY)), signed_settings) == "valid"


def test_missing_signature_is_refused_when_a_secret_is_configured(
    forge: Forge, signed_settings: WebhookSettings
) -> None:
    with pytest.raises(SignatureMissingError):
        _read(forge, _with_digest(forge, None), signed_settings)


def test_empty_digest_counts_as_unsigned(forge: Forge, signed_settings: WebhookSettings) -> None:
    with pytest.raises(SignatureMissingError):
        _read(forge, _with_digest(forge, ""), signed_settings)


@pytest.mark.parametrize(
    "digest",
    [
        pytest.param("0" * 64, id="wrong"),
        pytest.param(hex_hmac(SECRET, BODY)[:40], id="truncated"),
        pytest.param(hex_hmac(SECRET, BODY).upper(), id="upper-cased"),
        pytest.param("z" * 64, id="non-hex"),
        pytest.param(hex_hmac(SECRET, BODY) + "00", id="too-long"),
        pytest.param("é" * 64, id="non-ascii"),
        pytest.param(hex_hmac(SECRET, BODY + b" "), id="valid-over-a-different-body"),
        pytest.param(hex_hmac(OTHER_SECRET, BODY), id="unknown-secret"),
    ],
)
def test_bad_signature_is_a_mismatch(
    forge: Forge, digest: str, signed_settings: WebhookSettings
) -> None:
    with pytest.raises(SignatureMismatchError) as caught:
        _read(forge, _with_digest(forge, digest), signed_settings)
    assert SECRET not in str(caught.value)
    assert digest not in str(caught.value)
    assert hex_hmac(SECRET, BODY) not in str(caught.value)


def test_every_secret_of_a_rotation_is_accepted(forge: Forge) -> None:
    settings = make_settings(**{forge: {"secret": OTHER_SECRET, "secrets": [SECRET]}})
    for secret in (SECRET, OTHER_SECRET):
        assert _read(forge, _with_digest(forge, hex_hmac(secret, BODY)), settings) == "valid"


def test_unsigned_delivery_passes_only_when_allowed_and_no_secret_exists(forge: Forge) -> None:
    open_settings = WebhookSettings(allow_unsigned=True)
    assert _read(forge, _with_digest(forge, None), open_settings) == "unsigned"
    with pytest.raises(SignatureMissingError):
        _read(forge, _with_digest(forge, None), WebhookSettings())
    with pytest.raises(SignatureMissingError):
        _read(forge, _with_digest(forge, None), make_settings(allow_unsigned=True))


def test_configured_authorization_header_authenticates_an_unsigned_delivery(forge: Forge) -> None:
    settings = WebhookSettings(**{forge: {"authorization": AUTHORIZATION}})
    headers = _with_digest(forge, None) | {"authorization": AUTHORIZATION}
    assert _read(forge, headers, settings) == "valid"


def test_wrong_authorization_header_is_a_mismatch_even_with_a_valid_signature(
    forge: Forge,
) -> None:
    settings = make_settings(**{forge: {"secret": SECRET, "authorization": AUTHORIZATION}})
    headers = _with_digest(forge, hex_hmac(SECRET, BODY)) | {"authorization": "Bearer nope"}
    with pytest.raises(SignatureMismatchError) as caught:
        _read(forge, headers, settings)
    assert AUTHORIZATION not in str(caught.value)


def test_missing_authorization_header_is_refused_when_only_it_is_configured(forge: Forge) -> None:
    settings = WebhookSettings(**{forge: {"authorization": AUTHORIZATION}})
    with pytest.raises(SignatureMissingError):
        _read(forge, _with_digest(forge, None), settings)


def test_repository_secret_overrides_the_forge_secrets(forge: Forge) -> None:
    repo_secret = "webhook-test-repo-secret"
    settings = make_settings(repos={"Test-CI/multi-line-secrets": {"secret": repo_secret}})
    assert _read(forge, _with_digest(forge, hex_hmac(repo_secret, BODY)), settings) == "valid"
    with pytest.raises(SignatureMismatchError):
        _read(forge, _with_digest(forge, hex_hmac(SECRET, BODY)), settings)


def test_other_repositories_keep_the_forge_secret_when_one_has_its_own(forge: Forge) -> None:
    settings = make_settings(repos={"someone/else": {"secret": "webhook-test-repo-secret"}})
    assert _read(forge, _with_digest(forge, hex_hmac(SECRET, BODY)), settings) == "valid"


@pytest.mark.parametrize("forge_name", ["gitea", "forgejo"])
def test_gitea_family_accepts_only_the_hub_header(forge_name: Forge) -> None:
    headers = _with_digest(forge_name, None)
    headers["x-hub-signature-256"] = f"sha256={hex_hmac(SECRET, BODY)}"
    assert _read(forge_name, headers, make_settings()) == "valid"


def test_github_ignores_a_bare_gitea_signature_header() -> None:
    headers = _with_digest("github", None) | {"x-gitea-signature": hex_hmac(SECRET, BODY)}
    with pytest.raises(SignatureMissingError):
        _read("github", headers, make_settings())


def test_forgejo_signature_header_is_read_before_gitea_header() -> None:
    headers = _with_digest("forgejo", hex_hmac(SECRET, BODY))
    headers["x-forgejo-signature"] = "0" * 64
    with pytest.raises(SignatureMismatchError):
        _read("forgejo", headers, make_settings())


def test_hmac_hex_is_lowercase_sha256_of_the_exact_bytes() -> None:
    assert hmac_sha256_hex(SECRET, BODY) == hex_hmac(SECRET, BODY)
    assert hmac_sha256_hex(SECRET.encode(), BODY) == hex_hmac(SECRET, BODY)


def test_hex_digest_without_any_secret_is_unsigned() -> None:
    assert verify_hex_digest(hex_hmac(SECRET, BODY), BODY, []) is SignatureResult.UNSIGNED


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, SignatureResult.UNSIGNED),
        ("", SignatureResult.UNSIGNED),
        ("sha256=", SignatureResult.UNSIGNED),
        (hex_hmac(SECRET, BODY), SignatureResult.MISMATCH),
        (f"sha1={hex_hmac(SECRET, BODY, 'sha1')}", SignatureResult.MISMATCH),
        (f"SHA256={hex_hmac(SECRET, BODY)}", SignatureResult.MISMATCH),
        (f"sha256={hex_hmac(SECRET, BODY)}", SignatureResult.VALID),
    ],
)
def test_hub_signature_needs_its_sha256_prefix(
    value: str | None, expected: SignatureResult
) -> None:
    assert verify_hub_signature(value, BODY, [SECRET]) is expected


@pytest.mark.parametrize(
    ("header", "configured", "expected"),
    [
        (AUTHORIZATION, AUTHORIZATION, SignatureResult.VALID),
        (AUTHORIZATION.lower(), AUTHORIZATION, SignatureResult.MISMATCH),
        ("Bearer ü", AUTHORIZATION, SignatureResult.MISMATCH),
        (None, AUTHORIZATION, SignatureResult.UNSIGNED),
        (AUTHORIZATION, None, SignatureResult.UNSIGNED),
    ],
)
def test_authorization_header_must_equal_the_configured_value(
    header: str | None, configured: str | None, expected: SignatureResult
) -> None:
    assert verify_authorization(header, configured) is expected


def test_combined_verdict_lets_a_mismatch_win() -> None:
    valid, unsigned, mismatch = SignatureResult
    assert combine(valid, mismatch) is mismatch
    assert combine(unsigned, valid) is valid
    assert combine(unsigned, unsigned) is unsigned


def test_credentials_match_repository_names_case_insensitively() -> None:
    settings = make_settings(repos={"Owner/Repo": {"secret": "webhook-test-repo-secret"}})
    credentials = credentials_for(settings, "gitea", "owner/repo")
    assert [s.get_secret_value() for s in credentials.secrets] == ["webhook-test-repo-secret"]
    assert credentials.authorization is None


@pytest.mark.parametrize("repo_secrets", [False, True], ids=["forge-secrets", "repo-secrets"])
def test_signature_is_checked_before_the_body_is_parsed(forge: Forge, repo_secrets: bool) -> None:
    repos = {"someone/else": {"secret": "webhook-test-repo-secret"}} if repo_secrets else {}
    settings = make_settings(repos=repos)
    garbage = b"{not json"
    with pytest.raises(SignatureMismatchError):
        read_delivery(ADAPTERS[forge], _with_digest(forge, "0" * 64, garbage), garbage, settings)
    signed = _with_digest(forge, hex_hmac(SECRET, garbage), garbage)
    with pytest.raises(InvalidWebhookError):
        read_delivery(ADAPTERS[forge], signed, garbage, settings)
