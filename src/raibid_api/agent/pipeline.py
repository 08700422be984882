"""The pipeline file a repository describes its build with (``.raibid.yml``, docs/pipelines.md).

```yaml
steps:
  - name: test
    run: make test             # run by /bin/sh -c in the checkout
    timeout: 10m               # optional; default: the job timeout
    env: {KEY: value}          # optional; numbers are taken as text, booleans must be quoted
    secret_env: [DEPLOY_TOKEN] # optional; secrets the agent holds, passed in and masked in logs
```

Secret values never live in the repository: ``secret_env`` names secrets the agent's operator gave
the agent (``run_agent(secrets=...)``); each is passed to the step under its own name, and every
secret's value is masked (``***``) in every log line of the job. Unknown keys anywhere are errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from raibid_api.config import describe_validation_error, parse_duration
from raibid_api.errors import InvalidInputError

PIPELINE_FILE = ".raibid.yml"
MAX_PIPELINE_BYTES = 256 * 1024

PipelineProblem = Literal["no_pipeline", "invalid_pipeline"]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class PipelineError(InvalidInputError):
    """A repository has no pipeline file, or one that cannot be run; ``reason`` says which.

    The message is written for the person who pushed: it names the file and what is wrong.
    """

    code = "invalid_pipeline"

    def __init__(self, reason: PipelineProblem, message: str) -> None:
        super().__init__(message, reason=reason)
        self.reason: PipelineProblem = reason


def _env_value(value: object) -> object:
    # YAML reads `DEBUG: true` as a boolean; which spelling the step sees would be a guess.
    if isinstance(value, bool):
        raise ValueError("booleans are ambiguous here; quote the value ('true')")
    if isinstance(value, int | float):
        return str(value)
    return value


EnvValue = Annotated[str, BeforeValidator(_env_value)]


def _duration(value: object) -> object:
    try:
        return parse_duration(value)
    except OverflowError:
        raise ValueError("is too long to be a duration") from None


StepTimeout = Annotated[timedelta, BeforeValidator(_duration), Field(gt=timedelta(0))]


class Step(BaseModel):
    """One command of the pipeline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    run: str = Field(min_length=1)
    timeout: StepTimeout | None = None
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    secret_env: list[EnvName] = Field(default_factory=list)

    @field_validator("run")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is blank")
        return value


class Pipeline(BaseModel):
    """The steps of a build, run in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[Step] = Field(min_length=1)

    @field_validator("steps")
    @classmethod
    def _unique_names(cls, steps: list[Step]) -> list[Step]:
        names = [step.name for step in steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"step names must be unique: {', '.join(duplicates)}")
        return steps

    def check_secrets(self, available: Mapping[str, str]) -> None:
        """Refuse a pipeline asking for a secret this agent does not hold.

        Raises:
            PipelineError: reason ``invalid_pipeline``, naming the step and the secret.
        """
        for step in self.steps:
            missing = [name for name in step.secret_env if name not in available]
            if missing:
                raise PipelineError(
                    "invalid_pipeline",
                    f"{PIPELINE_FILE}: step {step.name!r} needs secret(s) this agent does not "
                    f"hold: {', '.join(missing)}",
                )


def parse_pipeline(text: str) -> Pipeline:
    """Parse the text of a pipeline file.

    Raises:
        PipelineError: reason ``invalid_pipeline`` for empty, non-YAML or invalid content; the
            message names each key path with its problem (never a value).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise PipelineError("invalid_pipeline", f"{PIPELINE_FILE} is not valid YAML{at}") from None
    if data is None:
        raise PipelineError("invalid_pipeline", f"{PIPELINE_FILE} is empty; it needs `steps:`")
    if not isinstance(data, dict):
        raise PipelineError(
            "invalid_pipeline", f"{PIPELINE_FILE} must be a mapping with a `steps:` list"
        )
    try:
        return Pipeline.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(describe_validation_error(exc))
        raise PipelineError("invalid_pipeline", f"{PIPELINE_FILE}: {problems}") from None


def load_pipeline(checkout: Path) -> Pipeline:
    """Read and parse ``.raibid.yml`` at the root of ``checkout``.

    Raises:
        PipelineError: reason ``no_pipeline`` when the file is missing; ``invalid_pipeline`` when
            it is not a regular file inside the checkout, too large, not UTF-8 or invalid.
    """
    path = checkout / PIPELINE_FILE
    if not path.exists() and not path.is_symlink():
        raise PipelineError(
            "no_pipeline", f"no {PIPELINE_FILE} at the root of the repository; nothing to run"
        )
    resolved = path.resolve()
    # A symlink could point the agent at a file outside the checkout; refuse to read it.
    if not resolved.is_relative_to(checkout.resolve()) or not resolved.is_file():
        raise PipelineError("invalid_pipeline", f"{PIPELINE_FILE} is not a file in the repository")
    if resolved.stat().st_size > MAX_PIPELINE_BYTES:
        raise PipelineError(
            "invalid_pipeline", f"{PIPELINE_FILE} is larger than {MAX_PIPELINE_BYTES} bytes"
        )
    try:
        text = resolved.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PipelineError("invalid_pipeline", f"{PIPELINE_FILE} is not UTF-8 text") from None
    return parse_pipeline(text)
