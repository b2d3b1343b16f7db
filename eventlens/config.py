"""Settings, read once from flags and `EVENTLENS_*` environment variables.

Every setting is documented in docs/operations.md (a test checks that).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw is None else int(raw)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw is None else float(raw)


@dataclass(frozen=True)
class Settings:
    """Runtime settings. Sizes in bytes, durations in seconds."""

    data_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("EVENTLENS_DATA_DIR", "eventlens-data"))
    )
    host: str = field(default_factory=lambda: os.environ.get("EVENTLENS_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _env_int("EVENTLENS_PORT", 8000))
    # fsync before acknowledging capture. Off only for benchmarks of the non-durable ratio.
    fsync: bool = field(default_factory=lambda: _env_bool("EVENTLENS_FSYNC", True))
    # Person buckets per event table (storage.md item 4); fixed when a table is created.
    buckets: int = field(default_factory=lambda: _env_int("EVENTLENS_BUCKETS", 16))
    # The consumer commits at most this often (freshness <= this + commit time).
    commit_interval: float = field(
        default_factory=lambda: _env_float("EVENTLENS_COMMIT_INTERVAL", 0.5)
    )
    compact_min_files: int = field(
        default_factory=lambda: _env_int("EVENTLENS_COMPACT_MIN_FILES", 64)
    )
    # Events per second per project before capture answers 429 (0 = unlimited).
    capture_rate_limit: float = field(
        default_factory=lambda: _env_float("EVENTLENS_CAPTURE_RATE_LIMIT", 0.0)
    )
    max_batch_body: int = 20 * 1024 * 1024
    max_body: int = 2 * 1024 * 1024
    max_event: int = 1024 * 1024
    max_segment_message: int = 32 * 1024
    max_segment_batch: int = 500 * 1024
    log_level: str = field(default_factory=lambda: os.environ.get("EVENTLENS_LOG_LEVEL", "INFO"))
    # Query deadline when a request names none, and the most a request may ask for (seconds).
    query_timeout: float = field(
        default_factory=lambda: _env_float("EVENTLENS_QUERY_TIMEOUT", 30.0)
    )
    query_max_timeout: float = field(
        default_factory=lambda: _env_float("EVENTLENS_QUERY_MAX_TIMEOUT", 300.0)
    )
    # Threads that run queries (bounded: a query past its deadline keeps its slot until it stops).
    query_workers: int = field(default_factory=lambda: _env_int("EVENTLENS_QUERY_WORKERS", 2))

    @property
    def meta_db(self) -> Path:
        return self.data_dir / "meta.db"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    def project_dir(self, project_id: int) -> Path:
        return self.data_dir / "projects" / str(project_id)

    def event_table_dir(self, project_id: int) -> Path:
        return self.project_dir(project_id) / "events"

    def state_db(self, project_id: int) -> Path:
        """Per-project SQLite: persons, distinct ids, uuid dedupe index, dead letters."""
        return self.project_dir(project_id) / "state.db"

    def with_data_dir(self, data_dir: Path) -> Settings:
        from dataclasses import replace

        return replace(self, data_dir=data_dir)
