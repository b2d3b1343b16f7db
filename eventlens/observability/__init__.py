"""Structured JSON logs (structlog), Prometheus metrics (one registry, `/metrics`),
OpenTelemetry tracing (configured from OTEL_*, off by default), and the SLOs with the rules and
dashboard generated from them (slos.yaml; docs/slos.md)."""

# The public surface: the modules other components may import.
__all__ = ["dashboard", "logging", "metrics", "rules", "slo", "tracing"]
