"""Ingest: the durable log, the consumer process and the per-project writer that turns log records
into event-table commits and person state, exactly once (docs/adr/0001, 0002); and the consistent
backup and restore of a data directory (`backup`)."""

# The public surface: the modules other components may import.
__all__ = ["backup", "batch", "bulk_import", "consumer", "health", "log", "supervisor"]
