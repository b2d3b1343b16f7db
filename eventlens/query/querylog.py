"""The production query log: one JSON object per answered query, `<data_dir>/query-log.jsonl`.

    {"time": ISO instant the query was normalised against ("now"), "project": id,
     "query": the query JSON, "data_version": int, "engine": name, "kind": str,
     "fingerprint": sha256 hex, "timezone": str, "week_start": 0|1,
     "cached": "hit"|"stale"|"coalesced"  (only on a request the result cache served an answer
               computed earlier or by another request; absent on a computation)}

Written by the query service after each successful query (a computation, through the observers,
or a cached answer served), (append + flush, no fsync: losing the
last lines in a crash only loses replay material). Past `max_bytes` the file is renamed to
`query-log.jsonl.1` (replacing the previous backup) and a new one is started, so the log is
bounded at about twice `max_bytes`. `eventlens shadow replay --log FILE` reads it back.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from eventlens.errors import InvalidInput
from eventlens.observability.logging import get_logger
from eventlens.query.observers import QueryAnswered, QueryStarted

if TYPE_CHECKING:
    from eventlens.projects.store import Project
    from eventlens.query.normalise import NormalisedQuery

log = get_logger(__name__)
FILE_NAME = "query-log.jsonl"
REQUIRED = ("time", "project", "query", "data_version")


class QueryLog:
    """Thread-safe appender. A failing write is logged, never raised: the user's query has
    already been answered."""

    def __init__(self, path: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._size = 0

    def append(self, entry: dict[str, Any]) -> None:
        """Write one entry (a JSON object) as one line."""
        try:
            line = orjson.dumps(entry, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
            with self._lock:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = open(self.path, "ab")  # noqa: SIM115 - kept open
                    self._size = self._file.tell()
                if self._size + len(line) > self.max_bytes and self._size > 0:
                    self._file.close()
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                    self._file = open(self.path, "ab")  # noqa: SIM115
                    self._size = 0
                self._file.write(line)
                self._file.flush()
                self._size += len(line)
        except (OSError, TypeError) as exc:
            log.warning("query_log.write_failed", error=str(exc))

    # -- as a QueryObserver of the query service -------------------------------------------------

    def query_started(self, query: QueryStarted) -> None:
        pass

    def query_finished(
        self, query: QueryStarted, answer: QueryAnswered | None, error: BaseException | None
    ) -> None:
        """One line per answered query (failed ones are not replay material)."""
        if answer is None:
            return
        self.append(
            log_entry(
                query.now,
                query.project,
                query.query,
                query.normalised,
                query.engine_name,
                query.kind,
                answer.snapshot.version,
            )
        )

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def log_entry(
    now: datetime,
    project: Project,
    query: dict[str, Any],
    normalised: NormalisedQuery,
    engine: str,
    kind: str,
    data_version: int,
    *,
    cached: str | None = None,
) -> dict[str, Any]:
    """One query log line (module docstring); `cached`: how the result cache served it, None
    for a computation."""
    entry: dict[str, Any] = {
        "time": now.isoformat(),
        "project": project.id,
        "query": query,
        "data_version": data_version,
        "engine": engine,
        "kind": kind,
        "fingerprint": normalised.fingerprint,
        "timezone": project.timezone,
        "week_start": project.week_start,
    }
    if cached is not None:
        entry["cached"] = cached
    return entry


def computed(entry: dict[str, Any]) -> bool:
    """Whether a log entry is a computation (replay and warm-up material: a cached answer is
    an earlier computation served again, replaying it would only repeat that one)."""
    return entry.get("cached") is None


def read_log(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, entry) for each line of a query log. InvalidInput naming the file and line
    for a line that is not a JSON object with time, project, query and data_version."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InvalidInput(f"cannot read query log {path}: {exc.strerror}", field="log") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                entry = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{number}: not JSON ({exc})", field="log") from None
            if not isinstance(entry, dict) or any(k not in entry for k in REQUIRED):
                raise InvalidInput(
                    f"{path}:{number}: a query log line needs {', '.join(REQUIRED)}",
                    field="log",
                )
            yield number, entry
