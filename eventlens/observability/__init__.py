"""Structured JSON logs (structlog) and Prometheus metrics (one registry, `/metrics`)."""

# The public surface: the modules other components may import.
__all__ = ["logging", "metrics"]
