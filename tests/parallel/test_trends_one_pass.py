"""The trends kernel's one pass (count and distinct persons together, breakdown included)
against plain Python sets; the kernel's answers are covered by test_differential.py."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlens.query.parallel.kernels.compiled import count_distinct_cells

ROWS = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 3), st.integers(-1, 2)), min_size=1, max_size=80
)


@settings(max_examples=40, deadline=None)
@given(ROWS, st.data())
def test_counts_and_distinct_persons_per_cell_in_one_pass(
    rows: list[tuple[int, int, int]], data: st.DataObject
) -> None:
    rows.sort()  # person order, as frames are
    person = np.array([r[0] for r in rows], np.int64)
    label = np.array([r[1] for r in rows], np.int64)
    slot = np.array([r[2] for r in rows], np.int64)  # -1: outside the range
    lut = np.array(data.draw(st.lists(st.integers(0, 1), min_size=4, max_size=4)), np.int64)
    picked = np.array(sorted(data.draw(st.sets(st.integers(0, len(rows) - 1)))), dtype=np.int64)
    got = count_distinct_cells(picked, label, lut, slot, person, 2, 4)
    assert got is not None
    events, distinct = got
    chosen = [rows[i] for i in picked if rows[i][2] >= 0]
    for g in range(2):
        for s in range(4):
            # Slot 3 is the whole range: every counted row of the group.
            cell = [r for r in chosen if lut[r[1]] == g and (s == 3 or r[2] == s)]
            assert events[g * 4 + s] == len(cell)
            assert distinct[g * 4 + s] == len({r[0] for r in cell})


def test_without_a_breakdown_every_row_is_group_zero() -> None:
    person = np.array([0, 0, 1, 2, 2], np.int64)
    slot = np.array([0, 1, 1, 0, -1], np.int64)
    got = count_distinct_cells(
        np.arange(5), np.zeros(0, np.int64), np.zeros(1, np.int64), slot, person, 1, 3
    )
    assert got is not None
    assert got[0].tolist() == [2, 2, 4] and got[1].tolist() == [2, 2, 3]


def test_rows_out_of_person_order_are_refused() -> None:
    person = np.array([1, 0], np.int64)
    slot = np.zeros(2, np.int64)
    lut = np.zeros(1, np.int64)
    assert (
        count_distinct_cells(np.arange(2), np.zeros(0, np.int64), lut, slot, person, 1, 2) is None
    )
