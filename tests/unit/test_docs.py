"""The configuration reference lists every key the settings model has."""

from __future__ import annotations

from pydantic import BaseModel

from raibid_api.config import Settings
from tests.support.paths import REPO_ROOT


def leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            keys += leaf_keys(type(default), f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_configuration_reference_lists_every_key() -> None:
    text = (REPO_ROOT / "docs" / "configuration.md").read_text()
    keys = leaf_keys(Settings)
    assert len(keys) > 50
    missing = [
        key for key in keys
        if f"`{key}`" not in text and f"`{key.rsplit('.', 1)[0]}.*`" not in text
    ]  # fmt: skip
    assert missing == []
