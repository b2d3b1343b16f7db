"""Mergeable per-cell statistics shared by the trends kernel (and usable by any counting kernel).

A `Cells` holds, for one series and one breakdown value, one slot per bucket plus one extra slot
for the whole range (used to rank breakdown values). Every field is exactly mergeable across
partitions because a person's events all live in one partition (storage.md item 4): counts and
sums add, minima and maxima combine, and value lists (for exact quantiles) concatenate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Cells:
    """`events`: rows per slot; `count`: the counted quantity (events, distinct persons,
    numeric values, or persons for per-actor maths); `total`: sum of values (or of per-person
    counts); `low`/`high`: min/max; `lists`: per-slot value arrays (only for quantile maths)."""

    events: np.ndarray
    count: np.ndarray
    total: np.ndarray
    low: np.ndarray
    high: np.ndarray
    lists: list[list[np.ndarray]] | None = field(default=None)

    @classmethod
    def empty(cls, slots: int, with_lists: bool) -> Cells:
        return cls(
            events=np.zeros(slots, np.int64),
            count=np.zeros(slots, np.int64),
            total=np.zeros(slots, np.float64),
            low=np.full(slots, np.inf),
            high=np.full(slots, -np.inf),
            lists=[[] for _ in range(slots)] if with_lists else None,
        )

    def merge(self, other: Cells) -> Cells:
        """A new Cells combining both (inputs unchanged)."""
        lists = None
        if self.lists is not None and other.lists is not None:
            lists = [a + b for a, b in zip(self.lists, other.lists, strict=True)]
        return Cells(
            events=self.events + other.events,
            count=self.count + other.count,
            total=self.total + other.total,
            low=np.minimum(self.low, other.low),
            high=np.maximum(self.high, other.high),
            lists=lists,
        )


def group_cells(
    groups: np.ndarray,
    slots: np.ndarray,
    n_groups: int,
    n_slots: int,
    *,
    mode: str,
    persons: np.ndarray | None = None,
    n_persons: int = 0,
    values: np.ndarray | None = None,
    with_lists: bool = False,
) -> list[Cells]:
    """Cells per group from parallel row arrays (group id, slot id, and per mode the person or
    the numeric value of each row).

    mode "count": count = rows; "distinct": count = distinct persons; "actor": per (cell,
    person) event counts -> count = persons, total/low/high over the per-person counts, lists =
    the counts; "value": rows with a finite value -> count, total, low, high, lists = values.
    """
    size = n_groups * n_slots
    cell = groups.astype(np.int64) * n_slots + slots.astype(np.int64)
    events = np.bincount(cell, minlength=size)
    count = events
    total = np.zeros(size, np.float64)
    low = np.full(size, np.inf)
    high = np.full(size, -np.inf)
    lists_source: tuple[np.ndarray, np.ndarray] | None = None
    if mode == "distinct":
        assert persons is not None
        key = np.unique(cell * max(n_persons, 1) + persons)
        count = np.bincount(key // max(n_persons, 1), minlength=size)
    elif mode == "actor":
        assert persons is not None
        key, per_person = np.unique(cell * max(n_persons, 1) + persons, return_counts=True)
        owner = key // max(n_persons, 1)
        count = np.bincount(owner, minlength=size)
        total = np.bincount(owner, weights=per_person, minlength=size).astype(np.float64)
        np.minimum.at(low, owner, per_person)
        np.maximum.at(high, owner, per_person)
        lists_source = (owner, per_person.astype(np.float64))
    elif mode == "value":
        assert values is not None
        ok = np.isfinite(values)
        owner, vals = cell[ok], values[ok]
        count = np.bincount(owner, minlength=size)
        total = np.bincount(owner, weights=vals, minlength=size).astype(np.float64)
        np.minimum.at(low, owner, vals)
        np.maximum.at(high, owner, vals)
        lists_source = (owner, vals)
    per_cell_lists: list[np.ndarray] | None = None
    if with_lists and lists_source is not None:
        owner, vals = lists_source
        order = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[order], np.arange(size + 1))
        sorted_vals = vals[order]
        per_cell_lists = [sorted_vals[bounds[i] : bounds[i + 1]] for i in range(size)]
    out = []
    for g in range(n_groups):
        sl = slice(g * n_slots, (g + 1) * n_slots)
        lists = None
        if with_lists:
            lists = [
                [per_cell_lists[i]] if per_cell_lists is not None else []
                for i in range(sl.start, sl.stop)
            ]
        out.append(
            Cells(
                events=events[sl].astype(np.int64),
                count=np.asarray(count[sl]).astype(np.int64),
                total=total[sl].astype(np.float64),
                low=low[sl],
                high=high[sl],
                lists=lists,
            )
        )
    return out
