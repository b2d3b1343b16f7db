"""Storage: the per-project Delta event table (`event_table`; only that module talks to Delta Lake),
where tables live (`object_store`: local files or s3://, the clients' options), its read
façade (`tables`: snapshots at a version, one per-process table cache), the state
database (`state`, `stats`), dead letters, the uuid dedupe runs, and the data directory's format
version (`format`). Imports nothing above config
and errors."""

# The public surface: the modules other components may import.
__all__ = [
    "deadletters",
    "event_table",
    "format",
    "object_store",
    "schema",
    "state",
    "stats",
    "tables",
    "uuid_runs",
]
