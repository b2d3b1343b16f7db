"""Compiled row loops (numba: nopython, nogil, cached on disk): the steps that walk every row once.

Why compiled (ADR 0006): expressed as whole-array numpy operations, these steps made 5-10 passes
over the rows and allocated a temporary per pass; one loop does the same in one pass, and
`nogil` lets the local executor's threads run them on both cores at once. Each function takes
and returns plain numpy arrays, so its numpy twin in the differential tests stays the oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def _jit(fn: F) -> F:
    return cast(F, numba.njit(cache=True, nogil=True)(fn))


INT64_MIN = np.iinfo(np.int64).min
INT64_MAX = np.iinfo(np.int64).max


@_jit
def _select_rows(ts: Any, event: Any, lo: int, hi: int, wanted: Any) -> Any:  # pragma: no cover
    # Branch-free (the row is written, then kept or overwritten): the test is unpredictable,
    # and one unsigned compare checks lo <= t < hi.
    span = np.uint64(hi - lo)
    out = np.empty(ts.shape[0], np.int64)
    k = 0
    for i in range(ts.shape[0]):
        out[k] = i
        k += (np.uint64(ts[i] - lo) < span) & wanted[event[i]]
    return out[:k]


def select_rows(
    ts: np.ndarray, event: np.ndarray, lo: int | None, hi: int | None, wanted: np.ndarray
) -> np.ndarray:
    """Indices (ascending) of rows with lo <= ts < hi (None: unbounded) whose event code is
    True in `wanted` (a bool lookup table longer than every code in `event`)."""
    low = INT64_MIN if lo is None else lo
    high = INT64_MAX if hi is None else hi
    if high <= low:  # empty range (the loop's unsigned span test needs lo < hi)
        return np.zeros(0, np.int64)
    out: np.ndarray = _select_rows(ts, event, low, high, wanted)
    return out


@_jit
def _ordered_funnel(p: Any, t: Any, b: Any, n: int, window: int) -> Any:  # pragma: no cover
    size = p.shape[0]
    runs = 0
    longest = 0
    start = 0
    for i in range(size):
        if i + 1 == size or p[i + 1] != p[i]:
            runs += 1
            longest = max(longest, i + 1 - start)
            start = i + 1
    levels = np.zeros(runs, np.int64)
    chains = np.full((runs, n), -1, np.int64)
    anchored = np.zeros(runs, np.bool_)
    nxt = np.empty((n, max(longest, 1)), np.int64)
    cur = np.empty(n, np.int64)
    run = 0
    a = 0
    while a < size:
        e = a
        while e < size and p[e] == p[a]:
            e += 1
        # nxt[s, i - a]: the first row after i (in this person's run) matching step s, or -1.
        for s in range(n):
            cur[s] = -1
        for i in range(e - 1, a - 1, -1):
            for s in range(n):
                nxt[s, i - a] = cur[s]
                if (b[i] >> s) & 1:
                    cur[s] = i
        best_level = 0
        best_anchor = -1
        for k in range(a, e):
            if not b[k] & 1:
                continue
            level = 1
            at = k
            for s in range(1, n):
                j = nxt[s, at - a]
                if j < 0 or t[j] - t[k] > window:
                    break
                level += 1
                at = j
            if level > best_level:  # strictly: the earliest anchor wins a tie
                best_level = level
                best_anchor = k
        if best_anchor >= 0:
            anchored[run] = True
            levels[run] = best_level
            at = best_anchor
            chains[run, 0] = at
            for s in range(1, best_level):
                at = nxt[s, at - a]
                chains[run, s] = at
        run += 1
        a = e
    return levels[anchored], chains[anchored]


def ordered_funnel(
    person: np.ndarray, ts: np.ndarray, bits: np.ndarray, n: int, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ordered, non-strict funnel per person over rows in (person, ts, step) order: for each
    person with a step-1 event (ascending person order), (level reached by the best attempt,
    rows filling steps 0..n-1 of it, -1 when not reached). An attempt anchored at a step-1
    event takes, for each next step, the first later row matching it; it stops when that row
    is missing or more than `window` µs after the anchor. Best: furthest, earliest anchor."""
    levels, chains = _ordered_funnel(person, ts, bits, n, window)
    return np.asarray(levels), np.asarray(chains)


@_jit
def _retention(
    person: Any, start: Any, back: Any, t: int, first_only: bool, excluded: Any
) -> Any:  # pragma: no cover
    sizes = np.zeros(t, np.int64)
    matrix = np.zeros((t, t), np.int64)
    size = person.shape[0]
    a = 0
    while a < size:
        e = a
        cohorts = 0
        returns = 0
        first_seen = False
        while e < size and person[e] == person[a]:
            if start[e] >= 0 and not (first_only and first_seen):
                cohorts |= 1 << start[e]
            if start[e] != -1:
                first_seen = True
            if back[e] >= 0:
                returns |= 1 << back[e]
            e += 1
        if excluded[person[a]]:
            cohorts = 0
        for c in range(t):
            if (cohorts >> c) & 1:
                sizes[c] += 1
                for k in range(t):
                    if (returns >> k) & 1:
                        matrix[c, k] += 1
        a = e
    return sizes, matrix


def retention_cells(
    person: np.ndarray,
    start: np.ndarray,
    back: np.ndarray,
    periods: int,
    first_only: bool,
    excluded: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cohort sizes (periods,) and returners (periods, periods) over rows in (person, ts)
    order. start[i]: period of a start event (-1: not a start event, -2: a start event
    outside the periods, which still counts as the person's first one); back[i]: period of a
    return event or -1. first_only: only a person's first start event makes a cohort.
    excluded[person]: person has no cohort (a first-ever start before the range). periods <= 62."""
    sizes, matrix = _retention(person, start, back, periods, first_only, excluded)
    return np.asarray(sizes), np.asarray(matrix)


@_jit
def _distinct_per_cell(
    cell: Any, group: Any, person: Any, size: int, n_groups: int
) -> Any:  # pragma: no cover
    per_cell = np.zeros(size, np.int64)
    per_group = np.zeros(n_groups, np.int64)
    last_cell = np.full(size, -1, np.int64)
    last_group = np.full(n_groups, -1, np.int64)
    for i in range(cell.shape[0]):
        p = person[i]
        c = cell[i]
        if last_cell[c] != p:
            last_cell[c] = p
            per_cell[c] += 1
        g = group[i]
        if last_group[g] != p:
            last_group[g] = p
            per_group[g] += 1
    return per_cell, per_group


def distinct_per_cell(
    cell: np.ndarray, group: np.ndarray, person: np.ndarray, size: int, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct persons per cell (0..size-1) and per group (0..n_groups-1) in one pass, without
    sorting. Requires each person's rows to be contiguous (rows in person order)."""
    per_cell, per_group = _distinct_per_cell(cell, group, person, size, n_groups)
    return np.asarray(per_cell), np.asarray(per_group)


@_jit
def _touch_labels(
    person: Any, bits: Any, labels: Any, null_label: int, last: bool, n_persons: int
) -> Any:  # pragma: no cover
    out = np.full(n_persons, null_label, np.int64)
    for i in range(person.shape[0]):
        if bits[i] != 0 and labels[i] != null_label:
            p = person[i]
            if last or out[p] == null_label:
                out[p] = labels[i]
    return out


def touch_labels(
    person: np.ndarray, bits: np.ndarray, labels: np.ndarray, null_label: int, last: bool
) -> np.ndarray:
    """Per person code: the label of the person's first (last: latest) row with a step bit and
    a non-null label, in row order; `null_label` if none."""
    n_persons = int(person.max()) + 1 if person.size else 0
    out: np.ndarray = _touch_labels(person, bits, labels, null_label, last, n_persons)
    return out


@_jit
def _merge_positions(p_old: Any, t_old: Any, p_new: Any, t_new: Any) -> Any:  # pragma: no cover
    n = p_old.shape[0]
    m = p_new.shape[0]
    pos_old = np.empty(n, np.int64)
    pos_new = np.empty(m, np.int64)
    i = 0
    j = 0
    k = 0
    while i < n and j < m:
        if p_old[i] == p_new[j] and t_old[i] == t_new[j]:
            return pos_old, pos_new, True
        if p_old[i] < p_new[j] or (p_old[i] == p_new[j] and t_old[i] < t_new[j]):
            pos_old[i] = k
            i += 1
        else:
            pos_new[j] = k
            j += 1
        k += 1
    while i < n:
        pos_old[i] = k
        i += 1
        k += 1
    while j < m:
        pos_new[j] = k
        j += 1
        k += 1
    return pos_old, pos_new, False


def merge_positions(
    p_old: np.ndarray, t_old: np.ndarray, p_new: np.ndarray, t_new: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Where the rows of two (person, ts)-sorted sequences go in their merge: (positions of the
    old rows, positions of the new rows). None if an old and a new row have the same person and
    timestamp (their order then needs the uuids)."""
    pos_old, pos_new, tie = _merge_positions(p_old, t_old, p_new, t_new)
    return None if tie else (np.asarray(pos_old), np.asarray(pos_new))


@_jit
def _count_distinct_cells(
    rows: Any, labels: Any, lut: Any, slot: Any, person: Any, n_groups: int, n_slots: int
) -> Any:  # pragma: no cover
    size = n_groups * n_slots
    events = np.zeros(size, np.int64)
    distinct = np.zeros(size, np.int64)
    last = np.full(size, -1, np.int64)
    whole = n_slots - 1
    prev = -1
    in_order = True
    for k in range(rows.shape[0]):
        r = rows[k]
        s = slot[r]
        if s < 0:
            continue
        p = person[r]
        if p < prev:
            in_order = False
        prev = p
        g = lut[labels[r]] if labels.shape[0] > 0 else 0
        c = g * n_slots + s
        w = g * n_slots + whole
        events[c] += 1
        events[w] += 1
        if last[c] != p:
            last[c] = p
            distinct[c] += 1
        if last[w] != p:
            last[w] = p
            distinct[w] += 1
    return events, distinct, in_order


def count_distinct_cells(
    rows: np.ndarray,
    labels: np.ndarray,
    lut: np.ndarray,
    slot: np.ndarray,
    person: np.ndarray,
    n_groups: int,
    n_slots: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Events and distinct persons per (group, slot) cell in one pass over `rows` (indices
    into the frame's row arrays), for a trends series of every math counting events or
    persons. The group of row r is lut[labels[r]] (empty `labels`: group 0); rows whose
    slot[r] < 0 are out of range; the last slot (n_slots - 1) is the whole range: each
    counted row also counts there. None when the rows are not in person order (distinct
    persons are then counted the sorting way, group_cells)."""
    events, distinct, in_order = _count_distinct_cells(
        rows, labels, lut, slot, person, n_groups, n_slots
    )
    if not in_order:
        return None
    return np.asarray(events), np.asarray(distinct)
