"""Offline replay: re-run a recorded discrepancy, or a production query log, on both engines.

Each query is normalised against the instant it was first run (`now` of the record, `time` of the
log line) in the calendar it was run with, and read at the data version it was answered on
(Delta time travel), so a replay computes the same question over the same data as production.
A version that no longer exists (the table's log was cleaned up) is reported, not guessed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from eventlens.config import Settings
from eventlens.errors import EventLensError, QueryTimeout
from eventlens.query.deadline import Deadline
from eventlens.query.engines import Engine
from eventlens.query.model import parse_query
from eventlens.query.normalise import normalise
from eventlens.query.querylog import computed, read_log
from eventlens.query.registry import get_engine
from eventlens.shadow.compare import compare
from eventlens.shadow.runner import call_engine, engine_version
from eventlens.shadow.store import Discrepancy, ShadowStore
from eventlens.storage import tables
from eventlens.storage.event_table import Snapshot


@dataclass
class ReplayResult:
    """One replayed query: outcome as in the live runner (without shed / nondeterministic)."""

    project: int
    kind: str
    data_version: int
    outcome: str
    diff: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    primary_ms: float | None = None
    candidate_ms: float | None = None
    primary_result: Any = None
    candidate_result: Any = None

    def to_dict(self, *, results: bool = False) -> dict[str, Any]:
        out = {
            "project": self.project,
            "kind": self.kind,
            "data_version": self.data_version,
            "outcome": self.outcome,
            "diff": self.diff,
            "error": self.error,
            "primary_ms": self.primary_ms,
            "candidate_ms": self.candidate_ms,
        }
        if results:
            out["primary_result"] = self.primary_result
            out["candidate_result"] = self.candidate_result
        return out


def snapshot_at(settings: Settings, project: int, version: int) -> Snapshot:
    """The project's event table at `version`. InvalidInput if that version is gone."""
    return tables.snapshot(settings, project, version)


def compare_once(
    *,
    project: int,
    query: dict[str, Any],
    now: str,
    timezone: str,
    week_start: int,
    snapshot: Snapshot,
    primary: Engine,
    candidate: Engine,
    tolerance: float,
    timeout: float,
) -> ReplayResult:
    """Normalise `query` as of `now` (ISO instant) and run both engines on `snapshot`.
    InvalidQuery for a query that no longer parses."""
    normalised = normalise(
        parse_query(query),
        timezone=timezone,
        week_start=week_start,
        now=datetime.fromisoformat(now),
    )
    result = ReplayResult(project, normalised.kind, snapshot.version, "match")
    t0 = time.perf_counter()
    result.primary_result = call_engine(primary, normalised, snapshot, Deadline(timeout))
    t1 = time.perf_counter()
    result.primary_ms = round((t1 - t0) * 1000, 3)
    try:
        result.candidate_result = call_engine(candidate, normalised, snapshot, Deadline(timeout))
    except QueryTimeout as exc:
        result.outcome, result.error = "candidate_timeout", str(exc)
    except Exception as exc:
        result.outcome, result.error = "candidate_error", f"{type(exc).__name__}: {exc}"
    result.candidate_ms = round((time.perf_counter() - t1) * 1000, 3)
    if result.outcome == "match":
        diffs = compare(
            normalised.kind, result.primary_result, result.candidate_result, tolerance=tolerance
        )
        if diffs:
            result.outcome = "mismatch"
            result.diff = [d.to_dict() for d in diffs]
    return result


def replay_record(
    settings: Settings,
    store: ShadowStore,
    record_id: int,
    *,
    primary: str | None = None,
    candidate: str | None = None,
) -> tuple[Discrepancy, ReplayResult]:
    """Re-run discrepancy `record_id` on its data version with its engines (or the ones named).
    NotFound for an unknown id, InvalidInput if its data version is gone."""
    record = store.get(record_id)
    result = compare_once(
        project=record.project,
        query=record.query,
        now=record.now,
        timezone=record.timezone,
        week_start=record.week_start,
        snapshot=snapshot_at(settings, record.project, record.data_version),
        primary=get_engine(primary or record.primary_engine),
        candidate=get_engine(candidate or record.candidate_engine),
        tolerance=settings.shadow_tolerance,
        timeout=settings.shadow_timeout,
    )
    return record, result


def replay_log(
    settings: Settings,
    path: Path,
    *,
    primary: str | None,
    candidate: str,
    store: ShadowStore | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Replay every computation of a query log (cached answers skipped) on `primary` and
    `candidate`. With `store`, each
    comparison is recorded like a live one (so `shadow report` counts it and `shadow replay ID`
    finds its non-matches).
    Returns {"replayed", "outcomes": {...}, "problems": [per non-match: line, outcome, diff...]}.
    `primary` None = the engine that answered each logged query (its `engine` field).
    InvalidInput for a malformed log line, InvalidQuery for an unknown engine."""
    c_engine = get_engine(candidate)
    outcomes: dict[str, int] = {}
    problems: list[dict[str, Any]] = []
    replayed = 0
    for number, entry in read_log(path):
        if limit is not None and replayed >= limit:
            break
        if not computed(entry):
            continue  # a cached answer served again: its computation is replayed (ADR 0008)
        replayed += 1
        project, version = int(entry["project"]), int(entry["data_version"])
        p_name = primary or str(entry.get("engine") or "reference")
        try:
            p_engine = get_engine(p_name)
            result = compare_once(
                project=project,
                query=entry["query"],
                now=str(entry["time"]),
                timezone=str(entry.get("timezone", "UTC")),
                week_start=int(entry.get("week_start", 0)),
                snapshot=snapshot_at(settings, project, version),
                primary=p_engine,
                candidate=c_engine,
                tolerance=settings.shadow_tolerance,
                timeout=settings.shadow_timeout,
            )
        except EventLensError as exc:
            outcomes["unreplayable"] = outcomes.get("unreplayable", 0) + 1
            problems.append({"line": number, "outcome": "unreplayable", "error": exc.message})
            continue
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        if result.outcome == "match":
            if store is not None:
                store.add_comparison(
                    project=project,
                    kind=result.kind,
                    outcome="match",
                    primary_engine=p_name,
                    candidate_engine=candidate,
                    primary_ms=result.primary_ms,
                    candidate_ms=result.candidate_ms,
                )
            continue
        problem = {"line": number, **result.to_dict()}
        if store is not None:
            problem["id"] = store.add_discrepancy(
                Discrepancy(
                    project=project,
                    kind=result.kind,
                    outcome=result.outcome,
                    fingerprint=str(entry.get("fingerprint", "")),
                    query=entry["query"],
                    now=str(entry["time"]),
                    timezone=str(entry.get("timezone", "UTC")),
                    week_start=int(entry.get("week_start", 0)),
                    data_version=version,
                    primary_engine=p_name,
                    primary_engine_version=engine_version(p_engine),
                    candidate_engine=candidate,
                    candidate_engine_version=engine_version(c_engine),
                    primary_ms=result.primary_ms,
                    candidate_ms=result.candidate_ms,
                    primary_result=result.primary_result,
                    candidate_result=result.candidate_result,
                    diff=result.diff,
                    diff_count=len(result.diff),
                    error=result.error,
                )
            )
        problems.append(problem)
    return {
        "log": str(path),
        "primary": primary,
        "candidate": candidate,
        "replayed": replayed,
        "outcomes": outcomes,
        "problems": problems,
    }
