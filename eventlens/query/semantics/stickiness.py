"""Stickiness output rows, shared by both engines."""

from __future__ import annotations

from typing import Any

from eventlens.query.model import EventsNode


def stickiness_row(index: int, node: EventsNode, unit: str, data: list[int]) -> dict[str, Any]:
    """One series' output row from its histogram (data[n-1]: persons active in n intervals);
    every engine shapes its stickiness rows with this one function."""
    n = len(data)
    return {
        "label": node.custom_name or node.event or "All events",
        "series_index": index,
        "event": node.event,
        "custom_name": node.custom_name,
        "days": list(range(1, n + 1)),
        "labels": [f"{k} {unit}{'' if k == 1 else 's'}" for k in range(1, n + 1)],
        "data": data,
        "count": sum(data),
    }
