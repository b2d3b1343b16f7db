"""Benchmarks behind `eventlens bench ...` (docs/benchmark.md): capture, import, query, actors,
plot."""

# The public surface: the modules other components may import.
__all__ = ["actors", "capture", "importer", "plot", "query", "query_data"]
