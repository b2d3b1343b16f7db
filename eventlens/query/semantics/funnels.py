"""Funnel rules both engines share: window lengths, the unordered step matching, step rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

# Window units as fixed durations: the model bounds windows with the same table it is read by.
from eventlens.query.model import WINDOW_SECONDS, FunnelsQuery
from eventlens.query.semantics.buckets import quantile

__all__ = ["WINDOW_SECONDS", "max_step_matching", "step_rows"]

T = TypeVar("T")


def max_step_matching(window_events: Sequence[tuple[T, list[int]]], n: int) -> dict[int, T]:
    """Maximum matching steps <-> events (each given with the steps it matches, ascending),
    each event filling at most one step. Events are tried in time order and a matched event
    stays matched, so the matched events are the earliest. Both engines use this one rule."""
    owner: dict[int, int] = {}  # step -> index into window_events

    def augment(i: int, seen: set[int]) -> bool:
        for s in window_events[i][1]:
            if s in seen:
                continue
            seen.add(s)
            if s not in owner or augment(owner[s], seen):
                owner[s] = i
                return True
        return False

    for i in range(len(window_events)):
        if len(owner) == n:
            break
        augment(i, set())
    return {s: window_events[i][0] for s, i in owner.items()}


def step_rows(
    q: FunnelsQuery, counts: Sequence[int], times: Sequence[Sequence[float]], breakdown: str | None
) -> list[dict[str, Any]]:
    """Output rows from per-step person counts and conversion times (seconds from the previous
    step, over persons who reached the step). Works on finished counts, so every engine shapes
    its funnel rows with this one function."""
    out: list[dict[str, Any]] = []
    first_count = counts[0] if counts else 0
    prev_count = first_count
    for s, node in enumerate(q.series):
        count, step_times = counts[s], times[s]
        step: dict[str, Any] = {
            "order": s,
            "name": node.event or "All events",
            "custom_name": node.custom_name,
            "count": count,
            "conversion_from_first": count / first_count if first_count else 0.0,
            "conversion_from_previous": count / prev_count if prev_count else 0.0,
            "average_conversion_time": sum(step_times) / len(step_times) if step_times else None,
            "median_conversion_time": quantile(step_times, 0.5) if step_times else None,
        }
        if breakdown is not None:
            step["breakdown_value"] = breakdown
        out.append(step)
        prev_count = count
    return out
