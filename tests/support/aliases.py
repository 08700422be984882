"""Type aliases the fixtures and tests share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from raibid_api.config import Settings

# redis-py annotates replies as unions of bytes, str and awaitables; tests that inspect raw
# replies of a decode_responses client take it as this alias
RawRedis: TypeAlias = Any

# builds the settings of a test app from keyword sections
SettingsFactory = Callable[..., Settings]
