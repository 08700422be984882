"""``webhooks.store_deadline`` and ``webhooks.rate_limit_deadline``: durations above 0, below 5s."""

from __future__ import annotations

from datetime import timedelta

import pytest

from raibid_api.config import load_settings
from raibid_api.errors import ConfigError

KEYS = ("store_deadline", "rate_limit_deadline")


def test_the_defaults_leave_half_of_gitea_s_five_seconds_or_more() -> None:
    webhooks = load_settings().webhooks

    assert webhooks.store_deadline == timedelta(seconds=2.5)
    assert webhooks.rate_limit_deadline == timedelta(milliseconds=500)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(("text", "value"), [("250ms", 0.25), ("4.5s", 4.5), (1, 1.0)])
def test_a_deadline_is_a_duration(key: str, text: str | int, value: float) -> None:
    webhooks = load_settings(webhooks={key: text}).webhooks

    assert getattr(webhooks, key) == timedelta(seconds=value)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0s", "greater than"),
        ("5s", "must be below 5s, the time Gitea waits for the answer to a delivery"),
        ("1m", "must be below 5s"),
        ("soon", "is not a duration"),
    ],
)
def test_a_deadline_outside_the_forge_s_patience_is_refused(
    key: str, text: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(webhooks={key: text})

    [problem] = caught.value.problems
    assert problem.startswith(f"webhooks.{key}: ")
    assert reason in problem
