"""The projection comparison used by the golden fixtures."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.query.golden.compare import assert_matches, mismatches

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_a_value_matches_itself(value: Any) -> None:
    assert mismatches(value, value) == []


def test_extra_actual_keys_are_ignored() -> None:
    assert_matches({"data": [1, 2]}, {"data": [1, 2], "labels": ["a", "b"], "count": 3})


def test_path_of_a_wrong_list_element() -> None:
    expected = [{"data": [0, 1, 2, 2]}]
    actual = [{"data": [0, 1, 2, 3]}]
    assert mismatches(expected, actual) == ["[0].data[3]: expected 2, got 3"]
    with pytest.raises(AssertionError, match=r"\[0\]\.data\[3\]: expected 2, got 3"):
        assert_matches(expected, actual)


def test_missing_key_and_length_mismatch_are_reported() -> None:
    assert mismatches({"a": {"b": 1}}, {"a": {}}) == ["a.b: missing (expected 1)"]
    assert mismatches({"d": [1, 2]}, {"d": [1]}) == ["d: expected 2 items, got 1: [1]"]
    assert mismatches([1], {"x": 1}) == ["<root>: expected a list, got {'x': 1}"]


def test_floats_within_relative_tolerance() -> None:
    assert mismatches(7 / 3, 2.3333333333333335) == []
    assert mismatches(3.8333333333333335, 3.83333333333 + 3.3e-12) == []
    assert mismatches(1.0, 1.0 + 2e-9) != []
    assert mismatches(2, 2.0) == []
    assert mismatches(0, 1e-12) != []


def test_types_are_not_confused() -> None:
    assert mismatches(None, 0) != []
    assert mismatches(0, None) != []
    assert mismatches(True, 1) != []
    assert mismatches(1, True) != []
    assert mismatches("1", 1) != []
    assert mismatches(1, "1") != []
