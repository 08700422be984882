"""Structured logging: JSON in production, readable console in development, secrets redacted.

The server's own log calls go through structlog's native path (a level-filtering bound logger
that renders with orjson and writes the line itself): the standard library's logging machinery
cost several times the rendering on the request path. Third-party loggers (uvicorn's) still go
through the standard library, rendered by the same processors, so every line looks alike.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

_SENSITIVE_KEY = re.compile(
    r"secret|token|password|passwd|authorization|signature|cookie|api[_-]?key|credential", re.I
)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):[^@/\s]+@", re.I)
_BEARER = re.compile(r"(?i)\b(bearer|token)\s+[A-Za-z0-9._~+/=-]{8,}")
REDACTED = "***"


class SecretRedactor:
    """A structlog processor that hides secrets before anything is rendered.

    It replaces the values of keys that name a secret, every configured secret wherever it appears
    in a string, passwords in URLs, and bearer credentials.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first, so a secret that contains another is hidden whole
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact_text(self, text: str) -> str:
        """``text`` with every known secret and credential pattern replaced."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        # the patterns cost more than these look-ups, and most lines need neither
        if "@" in text:
            text = _URL_PASSWORD.sub(rf"\g<scheme>\g<user>:{REDACTED}@", text)
        if "earer" in text or "oken" in text or "EARER" in text or "OKEN" in text:
            text = _BEARER.sub(rf"\1 {REDACTED}", text)
        return text

    def _redact(self, key: str, value: Any) -> Any:
        if value is not None and _is_sensitive(key):
            return REDACTED
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return {k: self._redact(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._redact(key, v) for v in value]
        return value

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Redact every field of one log event."""
        for key, value in list(event_dict.items()):
            event_dict[key] = self._redact(key, value)
        return event_dict


@functools.lru_cache(maxsize=1024)
def _is_sensitive(key: str) -> bool:
    # the same few keys come back on every line; the pattern runs once for each
    return _SENSITIVE_KEY.search(key) is not None


class NamedLineLogger:
    """The logger the native path writes through: one rendered line per call, under a lock.

    It carries the name it was asked for, so `structlog.stdlib.add_logger_name` works for it as
    for a standard library logger.
    """

    def __init__(self, name: str, stream: TextIO, lock: threading.Lock) -> None:
        self.name = name
        self._stream = stream
        self._lock = lock

    def msg(self, line: str) -> None:
        """Write one rendered line."""
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    debug = info = warning = warn = error = critical = exception = log = msg


class NamedLineLoggerFactory:
    """Makes a `NamedLineLogger` per ``structlog.get_logger(name)``, all sharing one stream."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> NamedLineLogger:
        """The logger for ``get_logger(name)`` (an unnamed one for ``get_logger()``)."""
        return NamedLineLogger(str(args[0]) if args else "", self._stream, self._lock)


def _orjson_text(value: Any, **kwargs: Any) -> str:
    return orjson.dumps(value, default=kwargs.get("default") or str).decode()


def configure_logging(level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    """Set up structlog and route the standard library's loggers (uvicorn's) through it.

    Args:
        level: debug, info, warning or error.
        fmt: json, console, or auto (console on a terminal, JSON otherwise).
        secrets: values that must never appear in a log line.
    """
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        SecretRedactor(secrets),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=NamedLineLoggerFactory(sys.stderr),
        # drops events below the level before any processor spends time on them
        wrapper_class=structlog.make_filtering_bound_logger(level.upper()),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
