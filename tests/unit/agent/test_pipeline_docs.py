"""Every example pipeline in docs/pipelines.md parses, so the page cannot drift from the format."""

from __future__ import annotations

import re

import pytest
import yaml

from raibid_api.agent.pipeline import parse_pipeline
from tests.support.paths import REPO_ROOT

PIPELINES_DOC = REPO_ROOT / "docs" / "pipelines.md"
# a fenced ```yaml block, its text up to the closing fence
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def example_pipelines() -> list[str]:
    """The text of every ```yaml block of the page that is a pipeline (starts with `steps:`)."""
    blocks = YAML_BLOCK.findall(PIPELINES_DOC.read_text(encoding="utf-8"))
    return [block for block in blocks if block.startswith("steps:")]


EXAMPLES = example_pipelines()


def test_the_page_has_the_examples_it_promises() -> None:
    # the minimal file, a Python project, a Rust project, and env/timeout/secret_env together
    assert len(EXAMPLES) >= 4
    keys = {key for text in EXAMPLES for key in re.findall(r"^\s+(\w+):", text, re.MULTILINE)}
    assert {"env", "timeout", "secret_env"} <= keys


@pytest.mark.parametrize("text", EXAMPLES, ids=[f"example-{n}" for n in range(len(EXAMPLES))])
def test_every_example_pipeline_parses(text: str) -> None:
    pipeline = parse_pipeline(text)  # raises PipelineError, naming the problem, when it does not
    assert [step.name for step in pipeline.steps] == [
        s["name"] for s in yaml.safe_load(text)["steps"]
    ]
