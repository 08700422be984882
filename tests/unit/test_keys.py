from __future__ import annotations

import inspect

import pytest

from raibid_api.storage.keys import Keys


def every_key(keys: Keys) -> list[str]:
    found: list[str] = []
    for name, member in inspect.getmembers(type(keys)):
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            found.append(getattr(keys, name))
        elif callable(member):
            arity = len(inspect.signature(member).parameters) - 1
            made = getattr(keys, name)(*(["x"] * arity))
            found.extend(made if isinstance(made, list) else [made])  # templates come as a list
    return found


@pytest.mark.parametrize("prefix", ["raibid", "{raibid}", "t123"])
def test_every_key_starts_with_the_prefix_and_adds_no_braces(prefix: str) -> None:
    keys = every_key(Keys(prefix))
    assert len(keys) >= 14
    for key in keys:
        assert key.startswith(f"{prefix}:")
        assert "{" not in key.removeprefix(prefix)


def test_keys_follow_the_design_names() -> None:
    keys = Keys("P")
    assert keys.queue == "P:jobs"
    assert keys.job("abc") == "P:job:abc"
    assert keys.events("abc") == "P:job:abc:events"
    assert keys.index_all == "P:index:all"
    assert keys.index_status("pending") == "P:index:status:pending"
    assert keys.index_repo("o/r") == "P:index:repo:o/r"
    assert keys.delivery("gitea", "d1") == "P:delivery:gitea:d1"
    assert keys.agents == "P:agents"
    assert keys.claim_key == "P:dispatch:claim-key"
    assert keys.pod_claim("u1") == "P:pod-claim:u1"
    assert keys.outbox_status == "P:outbox:status"
