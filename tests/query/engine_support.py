"""Run the reference engine over in-memory rows (fast enough for hypothesis)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventlens.query import get_engine, normalise, parse_query
from eventlens.query.testing import parse_instant


def rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, ev in enumerate(events):
        out.append(
            {
                "uuid": ev.get("uuid") or f"{i:08d}",
                "event": ev["event"],
                "distinct_id": ev["distinct_id"],
                "person_id": ev.get("person_id") or ev["distinct_id"],
                "timestamp": parse_instant(ev["timestamp"]),
                "properties": ev.get("properties") or {},
                "person_properties": ev.get("person_properties") or {},
            }
        )
    return out


def run(
    events: list[dict[str, Any]],
    query: dict[str, Any],
    *,
    now: str | datetime = "2024-01-10T12:00:00Z",
    timezone: str = "UTC",
    week_start: int = 0,
) -> Any:
    nq = normalise(
        parse_query(query), timezone=timezone, week_start=week_start, now=parse_instant(now)
    )
    return get_engine("reference").run(nq, rows(events))


def ev(event: str, person: str, ts: str, **props: Any) -> dict[str, Any]:
    return {"event": event, "distinct_id": person, "timestamp": ts, "properties": props}
