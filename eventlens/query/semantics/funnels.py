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
    its funnel rows with this one function.

    Each row has PostHog's step fields (its funnel runner's `_serialize_step`): `action_id` (the
    event), `name`, `custom_name`, `order`, `people` (always [], as PostHog's answer: persons
    are listed by its actors query), `count`, `type` "events", the two conversion times, and with a
    breakdown `breakdown` and `breakdown_value`. In an unordered funnel step k is "completed k+1
    steps" of any of them, so, as PostHog, it names no event: `action_id` and `custom_name` null,
    `name` "Completed 1 step" / "Completed 3 steps". EventLens adds `conversion_from_first` and
    `conversion_from_previous` (PostHog's UI derives the one funnelStepReference picks).
    """
    out: list[dict[str, Any]] = []
    unordered = q.funnelsFilter.funnelOrderType == "unordered"
    first_count = counts[0] if counts else 0
    prev_count = first_count
    for s, node in enumerate(q.series):
        count, step_times = counts[s], times[s]
        if unordered:
            action_id, name, custom = None, f"Completed {s + 1} step{'s' if s else ''}", None
        else:
            action_id, name, custom = node.event, node.event or "All events", node.custom_name
        step: dict[str, Any] = {
            "action_id": action_id,
            "name": name,
            "custom_name": custom,
            "order": s,
            "people": [],
            "count": count,
            "type": "events",
            "conversion_from_first": count / first_count if first_count else 0.0,
            "conversion_from_previous": count / prev_count if prev_count else 0.0,
            "average_conversion_time": sum(step_times) / len(step_times) if step_times else None,
            "median_conversion_time": quantile(step_times, 0.5) if step_times else None,
        }
        if breakdown is not None:
            step["breakdown"] = breakdown
            step["breakdown_value"] = breakdown
        out.append(step)
        prev_count = count
    return out
