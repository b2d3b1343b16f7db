"""OpenTelemetry tracing, configured once per process from the standard `OTEL_*` variables.

On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`), or, with it unset, when an
OTLP endpoint is given (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
Off when neither, when `OTEL_TRACES_EXPORTER=none`, or when `OTEL_SDK_DISABLED=true`. The OTLP
exporter speaks http/protobuf (`OTEL_EXPORTER_OTLP_PROTOCOL` must be unset or `http/protobuf`).
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*` and the
exporter's own variables are read by the SDK as usual (docs/adr/0011-tracing.md).

Off costs nothing measurable: the SDK is not even imported, hot paths test `enabled()` (a
module-level bool) before doing any tracing work, and `span()` is a shared null context.

Spans of work handed to other threads follow through `contextvars` (the query pool and the
sub-task executor run each task in a copy of the caller's context); across processes (capture ->
ingest log -> consumer) a span context travels as a W3C `traceparent` string.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER_NAME = "eventlens"
_enabled = False
_provider: Any = None  # the SDK TracerProvider when enabled (typed Any: the SDK is imported late)
_NULL: contextlib.nullcontext[None] = contextlib.nullcontext()
_W3C = TraceContextTextMapPropagator()  # the ingest log record carries exactly a traceparent
Attributes = Mapping[str, str | int | float | bool | Sequence[int] | Sequence[str]]


class TracingConfigError(ValueError):
    """An OTEL_* variable asks for what EventLens does not ship (`variable` names it); the
    CLI maps it to InvalidInput (observability sits below the error tree's users)."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(message)
        self.variable = variable


def enabled() -> bool:
    """Is tracing on in this process? Hot paths test this before any tracing work."""
    return _enabled


def _exporters(env: Mapping[str, str]) -> list[str]:
    """The exporters the environment asks for ([] = tracing off)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    names = [n for n in names if n != "none"]
    for name in names:
        if name not in ("otlp", "console"):
            raise TracingConfigError(
                "OTEL_TRACES_EXPORTER",
                f"OTEL_TRACES_EXPORTER={name!r} is not supported (otlp, console or none)",
            )
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if "otlp" in names and protocol != "http/protobuf":
        raise TracingConfigError(
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: EventLens exports "
            "OTLP over http/protobuf",
        )
    return names


def configure_tracing(
    default_service_name: str = "eventlens", env: Mapping[str, str] | None = None
) -> bool:
    """Set up the global tracer provider from `env` (default os.environ); True if tracing is
    on. Idempotent: a second call keeps the first set-up. Raises TracingConfigError for an
    exporter or protocol EventLens does not ship."""
    global _enabled, _provider
    if _enabled:
        return True
    env = os.environ if env is None else env
    names = _exporters(env)
    if not names:
        return False
    # Imported only when on: the SDK and the exporter cost import time and memory.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create(
        {SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or default_service_name}
    ).merge(Resource({"eventlens.process": default_service_name, "process.pid": os.getpid()}))
    provider = TracerProvider(resource=resource)
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    _enabled = True
    atexit.register(shutdown_tracing)
    return True


def shutdown_tracing() -> None:
    """Export what is buffered and stop (the server's and the consumer's exit path)."""
    if _provider is not None:
        with contextlib.suppress(Exception):
            _provider.shutdown()


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def span(
    name: str,
    attributes: Attributes | None = None,
    *,
    links: Sequence[Link] = (),
    kind: SpanKind = SpanKind.INTERNAL,
) -> contextlib.AbstractContextManager[Span | None]:
    """A current span named `name` (None inside when tracing is off). Exceptions are recorded
    on the span and re-raised."""
    if not _enabled:
        return _NULL
    return tracer().start_as_current_span(name, attributes=attributes, links=links, kind=kind)


def set_attributes(attributes: Attributes) -> None:
    """Add attributes to the current span (no-op when off or outside a span)."""
    if _enabled:
        trace.get_current_span().set_attributes(attributes)


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span as hex, or None (off, or no span)."""
    if not _enabled:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def current_trace_id() -> str | None:
    ids = current_ids()
    return None if ids is None else ids[0]


def current_traceparent() -> str | None:
    """The current span as a W3C `traceparent` (to carry across a process), or None."""
    if not _enabled:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


def parse_traceparent(value: object) -> SpanContext | None:
    """The remote span context in a `traceparent` string (None if absent or malformed)."""
    if not isinstance(value, str):
        return None
    ctx = trace.get_current_span(_W3C.extract({"traceparent": value})).get_span_context()
    return ctx if ctx.is_valid else None


def start_span_in(
    parent: object, name: str, attributes: Attributes, *, start_time: int | None = None
) -> Span:
    """Start (not make current) a span whose parent is the context `parent` that
    `current_context()` returned in another thread; the caller ends it."""
    assert isinstance(parent, otel_context.Context)
    return tracer().start_span(name, parent, attributes=attributes, start_time=start_time)


def error_status(description: str) -> Status:
    return Status(StatusCode.ERROR, description)


def link_to(traceparent: object, attributes: Attributes | None = None) -> Link | None:
    """A span link to the span a `traceparent` names (None if absent or malformed)."""
    ctx = parse_traceparent(traceparent)
    return None if ctx is None else Link(ctx, attributes)


def current_context() -> otel_context.Context | None:
    """The caller's OpenTelemetry context, to parent spans started in another thread."""
    return otel_context.get_current() if _enabled else None


def link_to_current() -> Link | None:
    """A link to the current span (for work done later on its behalf), or None."""
    if not _enabled:
        return None
    ctx = trace.get_current_span().get_span_context()
    return Link(ctx) if ctx.is_valid else None
