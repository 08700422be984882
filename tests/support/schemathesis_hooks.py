"""Schemathesis hooks for the runs against the server (`SCHEMATHESIS_HOOKS`).

A claim or heartbeat may hold its answer up to ``wait`` seconds (60 at most) by design: a
generated number there would make each such call a long poll. A numeric ``wait`` is sent as 0;
every other value (``false``, a string, a negative number) is sent as generated.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    """A numeric ``wait`` answered at once, in every phase."""
    body = case.body
    if isinstance(body, dict) and type(body.get("wait")) in (int, float):
        body["wait"] = 0
