"""Keeping the agent's credentials away from the build steps it runs as the same user.

Steps run as the agent's own uid, so anything the agent can read, they can read: a token in a
file, in the agent's initial environment (``/proc/<pid>/environ`` keeps it after ``os.environ``
drops it), on its command line (``/proc/<pid>/cmdline``, world-readable) or in its memory
(``/proc/<pid>/mem``, ``ptrace``). Two measures close all four:

- `take_token_file`: the token comes in a file the agent reads and deletes before it starts;
- `hide_process`: ``prctl(PR_SET_DUMPABLE, 0)`` makes the kernel treat the agent like a setuid
  process: its ``/proc/<pid>`` files (``environ``, ``mem``, ``fd``, ``maps``) belong to root and
  ``ptrace`` needs ``CAP_SYS_PTRACE``, which the restricted pods drop. Steps are new programs
  (``execve`` resets the flag), so they stay dumpable themselves and debuggers work inside a
  build.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from pathlib import Path

from raibid_api.errors import ConfigError

PR_SET_DUMPABLE = 4  # <linux/prctl.h>
PR_GET_DUMPABLE = 3


def take_token_file(path: Path) -> str:
    """The token in ``path``, which is deleted once read.

    Raises:
        ConfigError: the file cannot be read, holds no token, or cannot be deleted (then a
            build step could read it too).
    """
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--token-file", [f"cannot read {path}: {exc}"]) from None
    try:
        path.unlink()
    except OSError as exc:
        raise ConfigError(
            "--token-file", [f"cannot delete {path} after reading it ({exc.strerror}): "
                             "a build step could read the token there"],
        ) from None  # fmt: skip
    if not token:
        raise ConfigError("--token-file", [f"{path} holds no token"])
    return token


def _prctl() -> ctypes._NamedFuncPointer:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return libc.prctl


def hide_process() -> bool:
    """Make this process non-dumpable (Linux); whether it is now.

    Elsewhere nothing changes and the answer is False.
    """
    if not sys.platform.startswith("linux"):
        return False
    prctl = _prctl()
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    return bool(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
