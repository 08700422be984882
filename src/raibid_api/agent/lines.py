"""Turning a process's output bytes into log lines: split, decoded, capped, secrets masked.

Masking runs before the length cap, on a buffer that holds the longest secret beyond the cap, so a
secret that straddles the cut is hidden too and never leaks as a prefix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
DEFAULT_MAX_LINE_BYTES = 16_384
TRUNCATED_MARKER = " [raibid: line truncated]"


class SecretMasker:
    """Replaces every occurrence of any secret value with ``***``.

    A multi-line secret (a PEM key) is masked line by line as well, because output is split into
    lines before masking. Empty values are ignored: there is nothing to hide.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            values.add(secret)
            values.update(part.strip() for part in secret.splitlines())
        values.discard("")
        # Longest first, so a secret containing another is replaced whole.
        ordered = sorted(values, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self.longest_bytes = max((len(v.encode()) for v in ordered), default=0)

    def mask(self, text: str) -> str:
        """The text with every secret replaced by ``***``."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


def cap_line(line: str, max_bytes: int, *, truncated: bool = False) -> str:
    """Cut ``line`` to at most ``max_bytes`` UTF-8 bytes, ending a cut line with a marker."""
    raw = line.encode()
    if len(raw) <= max_bytes and not truncated:
        return line
    keep = max(0, max_bytes - len(TRUNCATED_MARKER.encode()))
    # errors="ignore" drops a character the cut split in half rather than inventing one.
    return raw[:keep].decode(errors="ignore") + TRUNCATED_MARKER


class LineAssembler:
    """Splits one stream's chunks into masked, capped lines; memory stays bounded per line."""

    def __init__(self, masker: SecretMasker, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._masker = masker
        self._max = max_line_bytes
        self._keep = max_line_bytes + masker.longest_bytes
        self._buffer = bytearray()
        self._truncated = False

    def feed(self, chunk: bytes) -> list[str]:
        """The lines completed by ``chunk``, in order."""
        lines: list[str] = []
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            self._append(chunk[start:end])
            lines.append(self._emit())
            start = end + 1
        self._append(chunk[start:])
        return lines

    def finish(self) -> list[str]:
        """The last line when the stream ended without a newline."""
        if not self._buffer and not self._truncated:
            return []
        return [self._emit()]

    def _append(self, data: bytes) -> None:
        room = self._keep - len(self._buffer)
        if len(data) > room:
            self._truncated = True
            data = data[:room]
        self._buffer += data

    def _emit(self) -> str:
        raw = bytes(self._buffer).removesuffix(b"\r")
        truncated = self._truncated
        self._buffer.clear()
        self._truncated = False
        text = self._masker.mask(raw.decode(errors="replace"))
        return cap_line(text, self._max, truncated=truncated)
