"""Where spans go (`tracing.otlp_endpoint` or the standard variables), and no cost without one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from raibid_api.config import TracingSettings
from tests.support.processes import clean_env

BASE = "http://collector.example:4318"


@pytest.mark.parametrize(
    ("endpoint", "environ", "expected"),
    [
        (None, {}, None),
        (BASE, {}, f"{BASE}/v1/traces"),
        (f"{BASE}/", {}, f"{BASE}/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE}, f"{BASE}/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{BASE}/traces"}, f"{BASE}/traces"),
        ("http://mine:4318", {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE}, "http://mine:4318/v1/traces"),
        (BASE, {"OTEL_SDK_DISABLED": "true"}, None),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_SDK_DISABLED": "TRUE"}, None),
    ],
    ids=["none", "setting", "slash", "env-base", "env-traces", "setting-wins", "off", "off-env"],
)
def test_traces_url(endpoint: str | None, environ: dict[str, str], expected: str | None) -> None:
    assert TracingSettings(otlp_endpoint=endpoint).traces_url(environ) == expected


@pytest.mark.parametrize("endpoint", ["collector:4318", "ftp://collector", ""])
def test_an_endpoint_that_is_not_an_http_url_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="http"):
        TracingSettings(otlp_endpoint=endpoint)


PROBE = """
import sys
from raibid_api.app import create_app
from raibid_api.config import Settings
create_app(Settings(tracing={"otlp_endpoint": sys.argv[1]} if len(sys.argv) > 1 else {}))
loaded = [m for m in sys.modules
          if m.startswith(("opentelemetry.instrumentation", "opentelemetry.exporter"))
          or m == "raibid_api.observability.tracing"]
print(len(loaded))
"""


def loaded_tracing_modules(*args: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60,
        env={k: v for k, v in clean_env().items() if not k.startswith("OTEL_")}, check=True,
    )  # fmt: skip
    return int(result.stdout.splitlines()[-1])  # after the "tracing on" line, if any


def test_without_an_endpoint_no_tracing_module_is_even_imported() -> None:
    assert loaded_tracing_modules() == 0
    # the probe can see them: with an endpoint, they are there
    assert loaded_tracing_modules("http://127.0.0.1:9/") > 0
