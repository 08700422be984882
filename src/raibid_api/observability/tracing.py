"""OpenTelemetry traces over OTLP/HTTP: a span per request and per Redis call, with request ids.

Only `app.create_app` imports this module, and only when an endpoint is configured
(`TracingSettings.traces_url`): without one no OpenTelemetry module is loaded, and the request
path pays nothing. Spans are batched and sent by the SDK's background thread; `stop_tracing`
flushes what is left at shutdown.
"""

from __future__ import annotations

import os
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

REQUEST_ID_ATTRIBUTE = "raibid.request_id"
"""The span attribute that carries a request's id (`X-Request-ID`, and the job's `request_id`)."""


def start_tracing(traces_url: str, version: str) -> TracerProvider:
    """A tracer provider exporting to ``traces_url``, with every Redis client instrumented.

    The service is named by ``OTEL_SERVICE_NAME``, else ``raibid-api``; the SDK's own variables
    (``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_HEADERS``...) apply.
    """
    resource = Resource.create({
        "service.name": os.environ.get("OTEL_SERVICE_NAME") or "raibid-api",
        "service.version": version,
    })  # fmt: skip
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url)))
    RedisInstrumentor().instrument(tracer_provider=provider, request_hook=_tag_redis_call)
    return provider


def stop_tracing(provider: TracerProvider) -> None:
    """Send the spans still buffered and stop instrumenting Redis (blocking: run in a thread)."""
    RedisInstrumentor().uninstrument()
    provider.shutdown()


def tag_request_id(request_id: str) -> None:
    """Put the request id on the current span (the request's server span)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def _tag_redis_call(span: Any, instance: object, args: object, kwargs: object) -> None:
    """A Redis call made for a request carries its id too (bound by the request middleware)."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id and span is not None and span.is_recording():
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
