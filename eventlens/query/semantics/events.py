"""The event as both engines' per-value rules see it (filters, breakdown values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    uuid: str
    event: str
    distinct_id: str
    person_id: str
    ts: int  # microseconds since the epoch, UTC
    properties: dict[str, Any]
    person_properties: dict[str, Any]
    # The ids of the cohorts the event's person is in (engines set it when a query names
    # cohorts; semantics/cohorts.py decides membership).
    cohorts: frozenset[int] = frozenset()
