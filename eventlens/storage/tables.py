"""The read façade of storage: a project's event table as pinned snapshots.

Every reader outside the ingest writers (the query service, the warm-up, `eventlens status` and
`explain`, shadow replay, the dashboard's catalog and live view, the capture bench) opens tables
here, so "is there a table yet, else read it as empty" has one answer and a table's Delta log is
opened once per process: reopening reads the whole log again, which is most of the cost of a
small query or a poll of the live view.

Reading never creates anything: a project without a table reads as the empty version 0 that
creating it would give. Writers (ingest/project_writer.py, ingest/bulk_import.py) hold their own
`EventTable` (they serialise on a per-project file lock); `storage/event_table.py` is the one
module that talks to Delta Lake, so another storage backend replaces that module and this one.
"""

from __future__ import annotations

import threading

from eventlens.config import Settings
from eventlens.errors import InvalidInput
from eventlens.storage.event_table import EventTable, Snapshot
from eventlens.storage.object_store import Location

__all__ = ["TableCache", "has_table", "open_table", "snapshot"]


class TableCache:
    """Opened event tables by path. Thread-safe; only tables that exist are kept, so a project
    whose first events land later is found on its next read."""

    def __init__(self) -> None:
        self._tables: dict[Location, EventTable] = {}
        self._lock = threading.Lock()

    def table(self, path: Location) -> EventTable | None:
        """The table at `path`, opened on first use; None while no table exists there."""
        with self._lock:
            table = self._tables.get(path)
        if table is not None:
            return table
        if not EventTable.exists(path):
            return None
        table = EventTable.open_or_create(path)  # exists: opens, keeps its bucket count
        with self._lock:
            return self._tables.setdefault(path, table)

    def snapshot(
        self, path: Location, *, buckets: int, version: int | None = None, name: str = "table"
    ) -> Snapshot:
        """The snapshot of `version` (None = latest) of the table at `path`. Without a table:
        the empty version 0 with `buckets`; any other version is InvalidInput, as is a version
        the table no longer has."""
        table = self.table(path)
        if table is None:
            if version is None or version == 0:
                return Snapshot(0, buckets, [])
            raise InvalidInput(f"{name} has no event table (wanted version {version})")
        return table.snapshot(version)


# One per process: every reader in the server shares the opened tables.
_CACHE = TableCache()


def open_table(settings: Settings, project_id: int) -> EventTable | None:
    """The project's event table for reading (opened once per process), None if it has none yet.
    Use it for table-level facts (version, app transactions); read data through `snapshot`."""
    return _CACHE.table(settings.event_table_location(project_id))


def has_table(settings: Settings, project_id: int) -> bool:
    """Whether the project's event table exists (its first events have been committed)."""
    return open_table(settings, project_id) is not None


def snapshot(settings: Settings, project_id: int, version: int | None = None) -> Snapshot:
    """Project `project_id`'s event table pinned at `version` (None = the latest committed).

    A project without a table reads as the empty version 0 (`settings.buckets` buckets) and
    nothing is created; asking it for another version, or a table for a version it no longer
    has, raises InvalidInput.
    """
    return _CACHE.snapshot(
        settings.event_table_location(project_id),
        buckets=settings.buckets,
        version=version,
        name=f"project {project_id}",
    )
