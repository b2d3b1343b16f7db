"""The long-lived parts of a running server, built once and shared by the HTTP handlers.

Owns start/stop order: metadata store, ingest log (group-commit writer), consumer supervisor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventlens.config import Settings
from eventlens.projects.store import SqliteMetadataStore


@dataclass
class Runtime:
    settings: Settings
    metadata: SqliteMetadataStore
    # Set by the ingest component (IngestLog) and the consumer supervisor when they start.
    log: Any = None
    consumer: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(settings=settings, metadata=SqliteMetadataStore(settings.meta_db))

    def close(self) -> None:
        for part in (self.consumer, self.log):
            if part is not None:
                part.close()
        self.metadata.close()
