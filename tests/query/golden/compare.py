"""Projection comparison of an insight result against a golden fixture's `expected` value.

Rules (tests/fixtures/insights/README.md): every key present in an expected object must be
present and equal in the actual object (extra actual keys are ignored, so a fixture states only
what its rule decides); lists must have equal length and match element-wise; numbers match
within 1e-9 relative (ints and floats compare by value, so 2 == 2.0); booleans and None match
only themselves. The first mismatch is reported with its path, e.g.
"[0].data[3]: expected 2, got 3".
"""

from __future__ import annotations

import math
from typing import Any

REL_TOL = 1e-9


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """All mismatches of `actual` against the projection `expected`, as "<path>: ..." strings."""
    where = path or "<root>"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        out: list[str] = []
        for key, want in expected.items():
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                out.append(f"{sub}: missing (expected {want!r})")
            else:
                out.extend(mismatches(want, actual[key], sub))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list | tuple):
            return [f"{where}: expected a list, got {actual!r}"]
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} items, got {len(actual)}: {actual!r}"]
        out = []
        for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
            out.extend(mismatches(want, got, f"{path}[{i}]"))
        return out
    if _is_number(expected):
        if _is_number(actual) and _numbers_equal(float(expected), float(actual)):
            return []
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    if expected is None or isinstance(expected, bool):
        if actual is expected:
            return []
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    if type(expected) is not type(actual) or expected != actual:
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    return []


def _numbers_equal(want: float, got: float) -> bool:
    if math.isnan(want) or math.isnan(got):
        return False
    return math.isclose(want, got, rel_tol=REL_TOL, abs_tol=0.0)


def assert_matches(expected: Any, actual: Any) -> None:
    """Raise AssertionError listing every mismatch (path: expected X, got Y)."""
    found = mismatches(expected, actual)
    if found:
        raise AssertionError("\n".join(found))
