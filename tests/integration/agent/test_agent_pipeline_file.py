"""Reading ``.raibid.yml`` from a checkout, and the workspace that holds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from raibid_api.agent.pipeline import MAX_PIPELINE_BYTES, PipelineError, load_pipeline
from raibid_api.agent.workspace import job_workspace


def refused(checkout: Path) -> PipelineError:
    with pytest.raises(PipelineError) as caught:
        load_pipeline(checkout)
    return caught.value


def test_pipeline_file_at_the_root_is_read(tmp_path: Path) -> None:
    (tmp_path / ".raibid.yml").write_text("steps:\n  - {name: a, run: b}\n")

    assert load_pipeline(tmp_path).steps[0].run == "b"


def test_missing_file_is_no_pipeline(tmp_path: Path) -> None:
    error = refused(tmp_path)

    assert error.reason == "no_pipeline"
    assert "no .raibid.yml" in error.message


def test_symlink_out_of_the_checkout_is_refused_without_reading_it(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (tmp_path / "private").write_text("steps:\n  - {name: a, run: b}\n")
    (checkout / ".raibid.yml").symlink_to(tmp_path / "private")

    assert refused(checkout).reason == "invalid_pipeline"


def test_dangling_symlink_is_invalid_not_missing(tmp_path: Path) -> None:
    (tmp_path / ".raibid.yml").symlink_to(tmp_path / "nowhere")

    assert refused(tmp_path).reason == "invalid_pipeline"


def test_directory_named_like_the_file_is_invalid(tmp_path: Path) -> None:
    (tmp_path / ".raibid.yml").mkdir()

    assert refused(tmp_path).reason == "invalid_pipeline"


def test_oversized_file_is_invalid(tmp_path: Path) -> None:
    (tmp_path / ".raibid.yml").write_text("#" * (MAX_PIPELINE_BYTES + 1))

    assert "larger than" in refused(tmp_path).message


def test_file_that_is_not_utf8_is_invalid(tmp_path: Path) -> None:
    (tmp_path / ".raibid.yml").write_bytes(b"steps:\n  - {name: \xff, run: b}\n")

    assert "not UTF-8" in refused(tmp_path).message


class BuildCrashedError(Exception):
    pass


async def crash_inside_workspace(root: Path, seen: list[Path]) -> None:
    async with job_workspace(root, "job/../1") as workspace:
        (workspace.checkout / "file").write_text("x")
        seen.append(workspace.root)
        raise BuildCrashedError


async def test_workspace_is_removed_when_the_job_raises(tmp_path: Path) -> None:
    seen: list[Path] = []

    with pytest.raises(BuildCrashedError):
        await crash_inside_workspace(tmp_path, seen)

    assert seen[0].parent == tmp_path  # the job id cannot climb out of the root
    assert list(tmp_path.iterdir()) == []
