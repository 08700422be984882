from __future__ import annotations

import json
import logging

import pytest
import structlog

from raibid_api.observability.logging import REDACTED, SecretRedactor, configure_logging


def test_values_of_sensitive_keys_are_hidden() -> None:
    event = SecretRedactor()(None, "info", {"event": "x", "token": "abc", "webhook_secret": "s",
                                            "Authorization": "Bearer zz", "count": 3})  # fmt: skip
    assert event == {"event": "x", "token": REDACTED, "webhook_secret": REDACTED,
                     "Authorization": REDACTED, "count": 3}  # fmt: skip


def test_configured_secrets_are_hidden_inside_any_text() -> None:
    redactor = SecretRedactor(["hunter2-long-secret"])
    event = redactor(None, "info", {"event": "using hunter2-long-secret now",
                                    "nested": {"list": ["x hunter2-long-secret y"]}})  # fmt: skip
    assert "hunter2" not in json.dumps(event)


def test_url_passwords_and_bearer_tokens_are_hidden() -> None:
    text = SecretRedactor().redact_text("redis://:pa55word@redis:6379/0 Bearer abcdefghijkl")
    assert text == f"redis://:{REDACTED}@redis:6379/0 Bearer {REDACTED}"


def test_json_log_lines_carry_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json", ["super-secret-value"])
    structlog.get_logger("t").info("hello super-secret-value", token="t0k3n", repo="o/r")
    logging.getLogger("uvicorn.error").warning("from stdlib super-secret-value")
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert [line["event"] for line in lines] == [f"hello {REDACTED}", f"from stdlib {REDACTED}"]
    assert lines[0]["token"] == REDACTED
    assert lines[0]["repo"] == "o/r"
    structlog.reset_defaults()


def test_lines_below_the_level_are_dropped_and_kept_ones_name_their_logger(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("warning", "json")
    log = structlog.get_logger("raibid_api.example")
    log.info("dropped")
    log.warning("kept", count=3)
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert [(line["event"], line["level"], line["logger"]) for line in lines] == [
        ("kept", "warning", "raibid_api.example")
    ]
    assert lines[0]["count"] == 3
    assert lines[0]["timestamp"].endswith("Z")
    structlog.reset_defaults()
