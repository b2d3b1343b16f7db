"""Structured JSON logs (structlog), Prometheus metrics (one registry, `/metrics`), and the SLOs
with the rules and dashboard generated from them (slos.yaml; docs/slos.md)."""

# The public surface: the modules other components may import.
__all__ = ["dashboard", "logging", "metrics", "rules", "slo"]
