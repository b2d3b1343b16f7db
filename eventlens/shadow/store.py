"""Durable shadow-mode records: one embedded SQLite database, `<data_dir>/shadow.db`.

- `comparisons`: one row per shadowed query (or per batch of shed / primary-error queries, with
  `n` > 1), whatever the outcome; what the report counts.
- `discrepancies`: the full record of every outcome other than `match`: query JSON, fingerprint,
  the calendar it was normalised with (`now`, timezone, week_start) so replay resolves the same
  dates, data version, both results (each cut to `max_result_bytes`), the structured diff, both
  timings, engine names and versions, time.
- `rules`: known differences. A rule matches a discrepancy by query shape (kind, and a JSON object
  that must be a subset of the query) and optionally by diff path (fnmatch glob that every diff
  path must match). A matching rule *explains* a mismatch with its reason; it never hides it
  (the report lists explained mismatches apart). Rules are applied when the report is built, so a
  rule added today explains last week's records too.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventlens.errors import InvalidInput, NotFound
from eventlens.sqlite_db import open_store_db

OUTCOMES = (
    "match",
    "mismatch",
    "nondeterministic",
    "candidate_error",
    "candidate_timeout",
    "shed",
    "primary_error",
)
MAX_DIFFS = 200  # diff entries kept per record (the total count is kept too)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS comparisons (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    project INTEGER NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 1,
    primary_engine TEXT NOT NULL,
    candidate_engine TEXT NOT NULL,
    primary_ms REAL,
    candidate_ms REAL,
    record_id INTEGER
);
CREATE INDEX IF NOT EXISTS comparisons_at ON comparisons(at);
CREATE TABLE IF NOT EXISTS discrepancies (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    project INTEGER NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    query TEXT NOT NULL,
    now TEXT NOT NULL,
    timezone TEXT NOT NULL,
    week_start INTEGER NOT NULL,
    data_version INTEGER NOT NULL,
    primary_engine TEXT NOT NULL,
    primary_engine_version TEXT NOT NULL,
    candidate_engine TEXT NOT NULL,
    candidate_engine_version TEXT NOT NULL,
    primary_ms REAL,
    candidate_ms REAL,
    primary_result TEXT,
    candidate_result TEXT,
    results_truncated INTEGER NOT NULL DEFAULT 0,
    diff TEXT NOT NULL,
    diff_count INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS discrepancies_at ON discrepancies(at);
CREATE TABLE IF NOT EXISTS rules (
    id INTEGER PRIMARY KEY,
    kind TEXT,
    shape TEXT NOT NULL,
    path_glob TEXT,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


def dumps(value: Any) -> str:
    """JSON text that keeps NaN and ±Infinity (as the JS tokens), numpy values as numbers."""

    def default(o: Any) -> Any:
        if hasattr(o, "tolist"):
            return o.tolist()
        return str(o)

    return json.dumps(value, default=default, allow_nan=True, separators=(",", ":"))


def bounded(value: Any, max_bytes: int) -> tuple[str, bool]:
    """`value` as JSON text of at most `max_bytes` bytes (cut, then no longer valid JSON); and
    whether it was cut."""
    text = dumps(value)
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text, False
    return raw[:max_bytes].decode(errors="ignore"), True


def loads_maybe(text: str | None) -> Any:
    """Parse a stored result; a truncated one comes back as the text itself."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class Discrepancy:
    """Everything recorded about one non-matching comparison (see the module docstring)."""

    project: int
    kind: str
    outcome: str
    fingerprint: str
    query: dict[str, Any]
    now: str
    timezone: str
    week_start: int
    data_version: int
    primary_engine: str
    candidate_engine: str
    primary_engine_version: str = ""
    candidate_engine_version: str = ""
    primary_ms: float | None = None
    candidate_ms: float | None = None
    primary_result: Any = None
    candidate_result: Any = None
    diff: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    at: float = field(default_factory=time.time)
    id: int | None = None
    results_truncated: bool = False
    diff_count: int = 0
    explained_by: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Rule:
    """A known difference: queries of `kind` (None = any) whose JSON contains `shape`, and whose
    every diff path matches `path_glob` (None = any), are explained by `reason`."""

    id: int
    kind: str | None
    shape: dict[str, Any]
    path_glob: str | None
    reason: str

    def explains(self, record: Discrepancy) -> bool:
        if record.outcome not in ("mismatch", "nondeterministic"):
            return False
        if self.kind is not None and self.kind != record.kind:
            return False
        if not _contains(record.query, self.shape):
            return False
        if self.path_glob is None:
            return True
        paths = [d["path"] for d in record.diff]
        return bool(paths) and all(fnmatch.fnmatchcase(p, self.path_glob) for p in paths)


def _contains(value: Any, shape: Any) -> bool:
    """`shape` is a subset of `value`: objects by key (recursively), anything else equal."""
    if isinstance(shape, dict):
        return isinstance(value, dict) and all(
            k in value and _contains(value[k], v) for k, v in shape.items()
        )
    return bool(value == shape)


class ShadowStore:
    """Thread-safe handle on shadow.db (one connection behind a lock; writes are small)."""

    def __init__(self, path: Path, *, max_result_bytes: int = 256 * 1024) -> None:
        self.path = path
        self.max_result_bytes = max_result_bytes
        self._lock = threading.Lock()
        self._db = open_store_db(path, _SCHEMA)
        # Shadow records are diagnostics: losing the last ones in a power cut is acceptable.
        self._db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes --------------------------------------------------------------------------------

    def add_comparison(
        self,
        *,
        project: int,
        kind: str,
        outcome: str,
        primary_engine: str,
        candidate_engine: str,
        primary_ms: float | None = None,
        candidate_ms: float | None = None,
        n: int = 1,
        record_id: int | None = None,
        at: float | None = None,
    ) -> None:
        """Count `n` comparisons with `outcome` (one of OUTCOMES)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        with self._lock:
            self._db.execute(
                "INSERT INTO comparisons (at, project, kind, outcome, n, primary_engine,"
                " candidate_engine, primary_ms, candidate_ms, record_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    time.time() if at is None else at,
                    project,
                    kind,
                    outcome,
                    n,
                    primary_engine,
                    candidate_engine,
                    primary_ms,
                    candidate_ms,
                    record_id,
                ),
            )

    def add_discrepancy(self, record: Discrepancy) -> int:
        """Store `record` (results cut to `max_result_bytes` each, diff to MAX_DIFFS entries) and
        count it as a comparison; returns its id."""
        primary, cut_a = bounded(record.primary_result, self.max_result_bytes)
        candidate, cut_b = bounded(record.candidate_result, self.max_result_bytes)
        diff_count = record.diff_count or len(record.diff)
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO discrepancies (at, project, kind, outcome, fingerprint, query, now,"
                " timezone, week_start, data_version, primary_engine, primary_engine_version,"
                " candidate_engine, candidate_engine_version, primary_ms, candidate_ms,"
                " primary_result, candidate_result, results_truncated, diff, diff_count, error)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.at,
                    record.project,
                    record.kind,
                    record.outcome,
                    record.fingerprint,
                    dumps(record.query),
                    record.now,
                    record.timezone,
                    record.week_start,
                    record.data_version,
                    record.primary_engine,
                    record.primary_engine_version,
                    record.candidate_engine,
                    record.candidate_engine_version,
                    record.primary_ms,
                    record.candidate_ms,
                    primary,
                    candidate,
                    int(cut_a or cut_b),
                    dumps(record.diff[:MAX_DIFFS]),
                    diff_count,
                    record.error,
                ),
            )
            record_id = int(cur.lastrowid or 0)
        record.id = record_id
        self.add_comparison(
            project=record.project,
            kind=record.kind,
            outcome=record.outcome,
            primary_engine=record.primary_engine,
            candidate_engine=record.candidate_engine,
            primary_ms=record.primary_ms,
            candidate_ms=record.candidate_ms,
            record_id=record_id,
            at=record.at,
        )
        return record_id

    def add_rule(
        self,
        *,
        reason: str,
        kind: str | None = None,
        shape: Any = None,
        path_glob: str | None = None,
    ) -> int:
        """Add a known-difference rule; returns its id. InvalidInput without a reason or with a
        shape that is not a JSON object."""
        if not reason.strip():
            raise InvalidInput("a known-difference rule needs a reason", field="reason")
        shape = {} if shape is None else shape
        if not isinstance(shape, dict):
            raise InvalidInput("the rule's query shape must be a JSON object", field="shape")
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO rules (kind, shape, path_glob, reason, created_at) VALUES (?,?,?,?,?)",
                (kind, dumps(shape), path_glob, reason.strip(), time.time()),
            )
            return int(cur.lastrowid or 0)

    def remove_rule(self, rule_id: int) -> None:
        """Delete rule `rule_id`; NotFound if there is none."""
        with self._lock:
            cur = self._db.execute("DELETE FROM rules WHERE id = ?", (rule_id,))
        if cur.rowcount == 0:
            raise NotFound(f"known-difference rule {rule_id} not found")

    # -- reads ---------------------------------------------------------------------------------

    def rules(self) -> list[Rule]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, shape, path_glob, reason FROM rules ORDER BY id"
            ).fetchall()
        return [Rule(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def comparisons(
        self, since: float = 0.0, projects: set[int] | None = None
    ) -> list[dict[str, Any]]:
        """Comparison rows at or after `since` (unix seconds), oldest first."""
        with self._lock:
            cur = self._db.execute(
                "SELECT at, project, kind, outcome, n, primary_engine, candidate_engine,"
                " primary_ms, candidate_ms, record_id FROM comparisons WHERE at >= ? ORDER BY at",
                (since,),
            )
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        if projects is not None:
            rows = [r for r in rows if r["project"] in projects]
        return rows

    def discrepancies(
        self, since: float = 0.0, projects: set[int] | None = None
    ) -> list[Discrepancy]:
        """Discrepancy records at or after `since`, oldest first, with rules applied."""
        with self._lock:
            cur = self._db.execute(
                "SELECT * FROM discrepancies WHERE at >= ? ORDER BY at", (since,)
            )
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        records = [self._record(r) for r in rows]
        if projects is not None:
            records = [r for r in records if r.project in projects]
        return self.explain(records)

    def get(self, record_id: int) -> Discrepancy:
        """One discrepancy record; NotFound if there is no such id."""
        with self._lock:
            cur = self._db.execute("SELECT * FROM discrepancies WHERE id = ?", (record_id,))
            names = [d[0] for d in cur.description]
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"shadow record {record_id} not found")
        return self.explain([self._record(dict(zip(names, row, strict=True)))])[0]

    def explain(self, records: list[Discrepancy]) -> list[Discrepancy]:
        """Mark each record explained by the first rule that matches it (in place)."""
        rules = self.rules()
        for r in records:
            for rule in rules:
                if rule.explains(r):
                    r.explained_by, r.reason = rule.id, rule.reason
                    break
        return records

    @staticmethod
    def _record(row: dict[str, Any]) -> Discrepancy:
        return Discrepancy(
            id=row["id"],
            at=row["at"],
            project=row["project"],
            kind=row["kind"],
            outcome=row["outcome"],
            fingerprint=row["fingerprint"],
            query=json.loads(row["query"]),
            now=row["now"],
            timezone=row["timezone"],
            week_start=row["week_start"],
            data_version=row["data_version"],
            primary_engine=row["primary_engine"],
            primary_engine_version=row["primary_engine_version"],
            candidate_engine=row["candidate_engine"],
            candidate_engine_version=row["candidate_engine_version"],
            primary_ms=row["primary_ms"],
            candidate_ms=row["candidate_ms"],
            primary_result=loads_maybe(row["primary_result"]),
            candidate_result=loads_maybe(row["candidate_result"]),
            results_truncated=bool(row["results_truncated"]),
            diff=json.loads(row["diff"]),
            diff_count=row["diff_count"],
            error=row["error"],
        )
