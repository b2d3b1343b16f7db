"""Structured JSON logs (structlog), Prometheus metrics (one registry, `/metrics`) and
OpenTelemetry tracing (configured from OTEL_*, off by default)."""

# The public surface: the modules other components may import.
__all__ = ["logging", "metrics", "tracing"]
