"""Parsing ``.raibid.yml``: what a valid pipeline means, and what each mistake is told."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from raibid_api.agent.pipeline import Pipeline, PipelineError, Step, parse_pipeline

VALID = """
steps:
  - name: test
    run: make test
    timeout: 10m
    env: {KEY: value, PORT: 8080, RATIO: 1.5}
  - name: deploy
    run: |
      ./deploy.sh
      echo done
    secret_env: [DEPLOY_TOKEN]
"""


def problem(text: str) -> PipelineError:
    with pytest.raises(PipelineError) as caught:
        parse_pipeline(text)
    return caught.value


def test_valid_pipeline_keeps_steps_in_order_with_their_settings() -> None:
    pipeline = parse_pipeline(VALID)

    assert [step.name for step in pipeline.steps] == ["test", "deploy"]
    assert pipeline.steps[0] == Step(
        name="test",
        run="make test",
        timeout=timedelta(minutes=10),
        env={"KEY": "value", "PORT": "8080", "RATIO": "1.5"},
    )
    assert pipeline.steps[1].timeout is None
    assert pipeline.steps[1].run == "./deploy.sh\necho done\n"
    assert pipeline.steps[1].secret_env == ["DEPLOY_TOKEN"]


@pytest.mark.parametrize(
    ("timeout", "seconds"), [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), (45, 45)]
)
def test_step_timeout_accepts_the_configuration_durations(timeout: object, seconds: int) -> None:
    pipeline = parse_pipeline(f"steps:\n  - {{name: a, run: b, timeout: {timeout}}}\n")

    assert pipeline.steps[0].timeout == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("steps: [\n", "not valid YAML at line"),
        ("- name: a\n  run: b\n", "must be a mapping"),
        ("just text\n", "must be a mapping"),
        ("stages: []\nsteps:\n  - {name: a, run: b}\n", "stages: unknown key"),
        ("steps:\n  - {name: a, run: b, image: x}\n", "steps.0.image: unknown key"),
        ("steps: []\n", "steps: List should have at least 1 item"),
        ("steps:\n  - {name: a}\n", "steps.0.run: Field required"),
        ("steps:\n  - {name: a, run: '   '}\n", "steps.0.run: is blank"),
        ("steps:\n  - {name: '', run: b}\n", "steps.0.name"),
        ("steps:\n  - {name: a, run: b, timeout: soon}\n", "steps.0.timeout"),
        ("steps:\n  - {name: a, run: b, timeout: 0s}\n", "steps.0.timeout"),
        ("steps:\n  - {name: a, run: b, timeout: 99999999999999999999h}\n", "too long"),
        ("steps:\n  - {name: a, run: b, env: {DEBUG: true}}\n", "quote the value"),
        ("steps:\n  - {name: a, run: b, env: {1BAD: x}}\n", "steps.0.env.1BAD"),
        ("steps:\n  - {name: a, run: b, env: [A]}\n", "steps.0.env"),
        ("steps:\n  - {name: a, run: b, secret_env: [not-a-name]}\n", "steps.0.secret_env.0"),
        ("steps:\n  - {name: a, run: b}\n  - {name: a, run: c}\n", "must be unique: a"),
    ],
)
def test_invalid_pipeline_is_refused_with_a_message_naming_the_problem(
    text: str, message: str
) -> None:
    error = problem(text)

    assert error.reason == "invalid_pipeline"
    assert ".raibid.yml" in error.message
    assert message in error.message


def test_problem_message_never_repeats_an_env_value() -> None:
    error = problem("steps:\n  - {name: a, run: b, env: {TOKEN: [hunter2]}}\n")

    assert "hunter2" not in error.message


def test_secret_the_agent_does_not_hold_is_refused_naming_step_and_secret() -> None:
    pipeline = parse_pipeline("steps:\n  - {name: ship, run: b, secret_env: [A, B]}\n")

    with pytest.raises(PipelineError) as caught:
        pipeline.check_secrets({"A": "value"})

    assert caught.value.reason == "invalid_pipeline"
    assert "'ship'" in caught.value.message
    assert "B" in caught.value.message
    pipeline.check_secrets({"A": "x", "B": "y"})


@given(st.text())
@example("steps:\n  - {name: a, run: b, timeout: 1e999s}\n")
@example("steps:\n  - {name: a, run: b, timeout: 99999999999999999999h}\n")
@example("steps:\n  - {name: a, run: b, timeout: .inf}\n")
@example("steps:\n  - {name: a, run: b, timeout: .nan}\n")
@example("steps: !!python/object:os.system {}\n")
@example("steps:\n  - name: a\n    run: b\n    env: {A: .inf}\n")
def test_any_text_parses_or_raises_pipeline_error(text: str) -> None:
    result = parse_or_error(text)

    if isinstance(result, PipelineError):
        assert result.reason == "invalid_pipeline"
    else:
        assert result.steps


def parse_or_error(text: str) -> Pipeline | PipelineError:
    try:
        return parse_pipeline(text)
    except PipelineError as error:
        return error


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
step_keys = st.sampled_from(["name", "run", "timeout", "env", "secret_env", "other"])
names = st.text(min_size=1, max_size=10)
good_step = st.fixed_dictionaries(
    {"name": names, "run": names},
    optional={
        "timeout": st.sampled_from(["1s", "5m", 30, "2h"]),
        "env": st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,5}", fullmatch=True), names),
    },
)
any_step = st.dictionaries(step_keys, values, max_size=6)
steps = st.lists(good_step | any_step, max_size=4)


@given(st.dictionaries(st.sampled_from(["steps", "env"]), steps | values, max_size=2))
def test_any_pipeline_shaped_document_parses_or_raises_pipeline_error(
    document: dict[str, Any],
) -> None:
    result = parse_or_error(yaml.safe_dump(document))

    if isinstance(result, PipelineError):
        assert result.reason == "invalid_pipeline"
    else:
        assert [step.name for step in result.steps] == [s["name"] for s in document["steps"]]
