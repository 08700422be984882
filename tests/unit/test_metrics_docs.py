"""Every metric the server exports is listed, with its meaning, in docs/operations.md."""

from __future__ import annotations

import re

from tests.support.exported_metrics import families
from tests.support.paths import REPO_ROOT

OPERATIONS = REPO_ROOT / "docs" / "operations.md"


def listed() -> set[str]:
    text = OPERATIONS.read_text().split("## Metrics", 1)[1]
    return set(re.findall(r"^\| `(raibid_[a-z0-9_]+)` \|", text, re.MULTILINE))


def exported() -> set[str]:
    names = set()
    for family in families():
        if family.name.startswith("raibid_process_"):
            continue  # one row: raibid_process_*
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_every_exported_metric_is_documented_and_nothing_else() -> None:
    assert exported() == listed()


def test_names_follow_the_prometheus_conventions() -> None:
    for family in families():
        assert re.fullmatch(r"raibid_[a-z][a-z0-9_]*", family.name), family.name
        assert family.documentation, family.name
        if family.type in {"histogram", "summary"}:
            assert family.name.endswith("_seconds"), family.name
        assert not family.name.endswith("_total"), family.name  # the library adds it to counters
