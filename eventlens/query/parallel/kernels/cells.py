"""Mergeable per-cell statistics shared by the trends kernel (and usable by any counting kernel).

A `Cells` holds, for one series and one breakdown value, one slot per bucket plus one extra slot
for the whole range (used to rank breakdown values). Every field is exactly mergeable across
partitions because a person's events all live in one partition (storage.md item 4): counts and
sums add, minima and maxima combine, and value lists (for exact quantiles) concatenate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eventlens.query.parallel.frame import distinct_keys
from eventlens.query.parallel.kernels.compiled import distinct_per_cell


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
    range_slot: bool = False,
) -> list[Cells]:
    """Cells per group from parallel row arrays (group id, slot id, and per mode the person or
    the numeric value of each row).

    mode "count": count = rows; "distinct": count = distinct persons; "actor": per (cell,
    person) event counts -> count = persons, total/low/high over the per-person counts, lists =
    the counts; "value": rows with a finite value -> count, total, low, high, lists = values.

    range_slot: the rows carry slots 0..n_slots-2 only and the last slot is computed as their
    union (distinct persons over all slots, per-actor counts summed over slots), reusing the
    per-slot deduplication instead of a second pass over every row.
    """
    size = n_groups * n_slots
    cell = groups.astype(np.int64) * n_slots + slots.astype(np.int64)
    events = np.bincount(cell, minlength=size)
    if range_slot:
        events[n_slots - 1 :: n_slots] = np.bincount(groups, minlength=n_groups)[:n_groups]
    count = events
    total = np.zeros(size, np.float64)
    low = np.full(size, np.inf)
    high = np.full(size, -np.inf)
    owner: np.ndarray | None = None  # cell of each list value
    vals: np.ndarray | None = None
    if mode == "distinct" and persons is not None and _contiguous(persons):
        count, whole = distinct_per_cell(cell, groups.astype(np.int64), persons, size, n_groups)
        if range_slot:
            count[n_slots - 1 :: n_slots] = whole
    elif mode in ("distinct", "actor"):
        assert persons is not None
        # Person-major keys: over rows in (person, ts) order without a breakdown they are
        # already sorted, and deduplicating them is one pass (distinct_keys).
        key, per_person = distinct_keys(persons.astype(np.int64) * size + cell)
        owner = key % size
        if range_slot:
            # (person, group) over all slots, from the per-slot distinct keys.
            group_key = (key // size) * n_groups + owner // n_slots
            whole, whole_counts = _sum_by_key(group_key, per_person)
            owner = np.concatenate([owner, (whole % n_groups) * n_slots + (n_slots - 1)])
            per_person = np.concatenate([per_person, whole_counts.astype(np.int64)])
        count = np.bincount(owner, minlength=size)
        if mode == "actor":
            total = np.bincount(owner, weights=per_person, minlength=size).astype(np.float64)
            np.minimum.at(low, owner, per_person)
            np.maximum.at(high, owner, per_person)
            vals = per_person.astype(np.float64)
    elif mode == "value":
        assert values is not None
        ok = np.isfinite(values)
        owner, vals = cell[ok], values[ok]
        if range_slot:
            whole_owner = groups[ok].astype(np.int64) * n_slots + (n_slots - 1)
            owner, vals = np.concatenate([owner, whole_owner]), np.concatenate([vals, vals])
        count = np.bincount(owner, minlength=size)
        total = np.bincount(owner, weights=vals, minlength=size).astype(np.float64)
        np.minimum.at(low, owner, vals)
        np.maximum.at(high, owner, vals)
    per_cell_lists: list[np.ndarray] | None = None
    if with_lists and owner is not None and vals is not None:
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


def _sum_by_key(keys: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys ascending, sum of `weights` per key); no sort if keys are non-decreasing."""
    if keys.size == 0:
        return keys, weights[:0].astype(np.int64)
    if keys.size > 1 and not bool((keys[1:] >= keys[:-1]).all()):
        order = np.argsort(keys, kind="stable")
        keys, weights = keys[order], weights[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return keys[starts], np.add.reduceat(weights, starts).astype(np.int64)


def _contiguous(persons: np.ndarray) -> bool:
    """Are each person's rows adjacent? (True for frames in person order; the rolling maths
    repeat rows per window, which breaks it.)"""
    return persons.size < 2 or bool((persons[1:] >= persons[:-1]).all())
