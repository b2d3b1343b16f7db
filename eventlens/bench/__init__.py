"""Benchmarks behind `eventlens bench ...` (docs/benchmark.md): capture, import, query, plot."""

# The public surface: the modules other components may import.
__all__ = ["capture", "importer", "plot", "query", "query_data"]
