"""The vendors' CRD schemas stored in tests/fixtures/crds, as strict JSON Schema validators.

A CRD's ``openAPIV3Schema`` is close to JSON Schema; what the API server does beyond it and
matters here is pruning: a field that an object schema does not list is dropped (and refused by
``kubectl apply --validate=strict``) unless the schema preserves unknown fields. Strict mode makes
that an error: every object schema that lists properties, has no ``additionalProperties`` of its
own and no ``x-kubernetes-preserve-unknown-fields``, gets ``additionalProperties: false``.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import jsonschema
import yaml

from tests.support.manifests import Document
from tests.support.paths import FIXTURES

CRDS = FIXTURES / "crds"
SOURCES = CRDS / "SOURCES.md"
CASE_INSENSITIVE = "(?i)"


def _python_pattern(pattern: str) -> str:
    # Go's RE2 takes (?i) anywhere; Python only at the start of the expression.
    if CASE_INSENSITIVE in pattern and not pattern.startswith(CASE_INSENSITIVE):
        return CASE_INSENSITIVE + pattern.replace(CASE_INSENSITIVE, "")
    return pattern


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of an openAPIV3Schema that refuses the fields the API server would prune."""
    result = copy.deepcopy(schema)
    _tighten(result)
    return result


def _tighten(node: dict[str, Any]) -> None:
    if "pattern" in node:
        node["pattern"] = _python_pattern(node["pattern"])
    if node.get("nullable") is True and "type" in node:
        node["type"] = [node["type"], "null"]
    preserves = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in node and "additionalProperties" not in node and not preserves:
        node["additionalProperties"] = False
    children: list[Any] = list(node.get("properties", {}).values())
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            children.append(node[key])
    for key in ("anyOf", "allOf", "oneOf"):
        children.extend(node.get(key, []))
    for child in children:
        _tighten(child)


def crd_files() -> list[str]:
    """The names of the stored CRD files."""
    return sorted(p.name for p in CRDS.glob("*.yaml"))


@cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the strict schema, for every version of every stored CRD."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name in crd_files():
        crd = yaml.safe_load((CRDS / name).read_text(encoding="utf-8"))
        spec = crd["spec"]
        for version in spec["versions"]:
            key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
            found[key] = strict(version["schema"]["openAPIV3Schema"])
    return found


def has_schema(document: Document) -> bool:
    """Whether a CRD schema for this object's apiVersion and kind is stored."""
    return (str(document.get("apiVersion")), str(document.get("kind"))) in schemas()


def errors(document: Document) -> list[str]:
    """What the stored CRD schema finds wrong with a custom resource, one line each.

    Raises:
        KeyError: no CRD schema is stored for the object's apiVersion and kind.
    """
    schema = schemas()[(str(document.get("apiVersion")), str(document.get("kind")))]
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    )
