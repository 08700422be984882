"""The docs stand alone: they link only inside the repository, and they keep up with the code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from raibid_api.storage.keys import GROUP, Keys
from tests.support.paths import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
# a Markdown link target that is not a URL or an anchor of the same page
LOCAL_LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)\s#]+)(?:#[^)]*)?\)")
# how docs/architecture.md writes each parameter of a `Keys` method
PLACEHOLDERS = {
    "job_id": "<id>", "status": "<status>", "repo": "<owner/name>", "branch": "<branch>",
    "event": "<event>", "token": "<uuid>", "forge": "<forge>", "delivery_id": "<delivery id>",
    "fingerprint": "<fingerprint>", "scope": "<scope>", "subject": "<subject>", "line": "<line>",
    "pod_uid": "<pod uid>",
}  # fmt: skip


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_relative_link_points_at_a_file_of_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in LOCAL_LINK.findall(text):
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(REPO_ROOT), f"{doc.name} links outside: {target}"
        assert resolved.exists(), f"{doc.name} links to a missing file: {target}"


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_no_doc_sends_readers_to_the_unshipped_design_document(doc: Path) -> None:
    assert "DESIGN" + ".md" not in doc.read_text(encoding="utf-8")


def documented_keys() -> list[str]:
    """Every key `Keys` builds, as docs/architecture.md writes it (prefix `P`)."""
    keys = Keys("P")
    names = []
    for name, member in inspect.getmembers(Keys):
        if name.startswith("_") or name in {"job_templates"}:
            continue
        if isinstance(member, property):
            names.append(getattr(keys, name))
        elif inspect.isfunction(member):
            params = list(inspect.signature(member).parameters)[1:]
            names.append(getattr(keys, name)(*(PLACEHOLDERS[p] for p in params)))
    return names


def test_architecture_lists_every_redis_key_and_the_consumer_group() -> None:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    keys = documented_keys()
    assert len(keys) > 20
    assert [key for key in keys if f"`{key}`" not in text] == []
    assert f"`{GROUP}`" in text


def test_readme_layout_names_every_package_and_test_folder() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    layout = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    source = REPO_ROOT / "src" / "raibid_api"
    packages = [p.name for p in source.iterdir() if (p / "__init__.py").is_file()]
    modules = [p.name for p in source.glob("*.py") if p.name != "__init__.py"]
    folders = [p.name for p in (REPO_ROOT / "tests").iterdir() if p.is_dir() and p.name[0] != "_"]
    assert len(packages) > 5
    assert [p for p in packages if f"  {p}/" not in layout] == []
    assert [m for m in modules if m not in layout] == []
    assert [f for f in folders if f"  {f}/" not in layout] == []
