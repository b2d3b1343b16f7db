"""Hypothesis strategies for insight query bodies: valid-shaped queries of every kind, and the same
queries with one field (anywhere, at any depth) replaced by a hostile value: huge or non-finite
numbers, deep nesting, long strings, wrong types, dates and formulas at and past their limits."""

from __future__ import annotations

import copy
from typing import Any, get_args

from hypothesis import strategies as st

from eventlens.query.model import Operator

EVENTS = st.sampled_from(["$pageview", "signup", "purchase", None])
OPERATORS = st.sampled_from(get_args(Operator))
DATES = st.one_of(
    st.sampled_from(
        [
            "-7d",
            "-24h",
            "-1mStart",
            "dStart",
            "-1yStart",
            "all",
            "2024-01-01",
            "1970-01-01",
            "9999-12-30",
            "9999-12-31",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "-1000000d",
            "-99999y",
            "-1000000h",
        ]
    ),
    st.integers(0, 10**12).map(lambda n: f"-{n}{'hdwmqy'[n % 6]}"),
    st.integers(1, 6000).map(lambda n: "-" + "9" * n + "d"),
    st.datetimes().map(lambda d: d.isoformat()),
)
FORMULAS = st.one_of(
    st.sampled_from(["A", "A/B*100", "(A+B)/2", "-A", "A*1e300*1e300", "A*1e400"]),
    st.integers(1, 6000).map(lambda n: "A*" + "9" * n),
    st.integers(1, 6000).map(lambda n: "+".join(["A"] * n)),
    st.integers(1, 6000).map(lambda n: "-" * n + "A"),
    st.integers(1, 400).map(lambda n: "(" * n + "A" + ")" * n),
    st.text(max_size=50),
)
PATTERNS = st.one_of(
    st.sampled_from(["(.*a){1000}", "^a+$", "(", "[z-a]", "\\", "a{1001}", "(a|b)*c"]),
    st.integers(1, 3000).map(lambda n: f"(.*a){{{n}}}"),
    st.integers(1, 5000).map(lambda n: "a" * n),
    st.text(max_size=30),
)


def _group(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"key": "p", "value": "x"}
    for _ in range(depth):
        node = {"type": "AND", "values": [node]}
    return node


def _nested_list(depth: int) -> Any:
    out: Any = 1
    for _ in range(depth):
        out = [out]
    return out


HOSTILE = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 2**63, 2**64, 10**30, -(10**30), 1e308, -1e308, 1e-308]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=20),
    st.integers(1, 200_000).map(lambda n: "x" * n),
    st.integers(1, 80).map(_group),
    st.integers(1, 300).map(_nested_list),
    st.lists(st.integers(), max_size=5),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    DATES,
    FORMULAS,
    PATTERNS,
)


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(OPERATORS)
    value: Any
    if op in ("regex", "not_regex"):
        value = draw(PATTERNS)
    elif op in ("exact", "is_not"):
        value = draw(st.one_of(st.text(max_size=10), st.lists(st.text(max_size=5), max_size=3)))
    elif op.startswith("is_date"):
        value = draw(DATES)
    else:
        value = draw(st.one_of(st.integers(-(10**6), 10**6), st.text(max_size=10)))
    return {
        "key": draw(st.sampled_from(["p", "$browser", "n"])),
        "value": value,
        "operator": op,
        "type": draw(st.sampled_from(["event", "person"])),
    }


def _node(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "kind": "EventsNode",
        "event": draw(EVENTS),
        "properties": draw(st.lists(filters(), max_size=2)),
    }


@st.composite
def valid_shaped_queries(draw: st.DrawFn) -> dict[str, Any]:
    """A query of any kind whose fields have the right shapes (values may still be out of range:
    dates, windows, patterns, formulas are drawn from their hostile sets too)."""
    kind = draw(
        st.sampled_from(
            ["TrendsQuery", "FunnelsQuery", "RetentionQuery", "StickinessQuery", "LifecycleQuery"]
        )
    )
    date_range: dict[str, Any] = {"date_from": draw(DATES)}
    if draw(st.booleans()):
        date_range["date_to"] = draw(DATES)
    q: dict[str, Any] = {
        "kind": kind,
        "dateRange": date_range,
        "properties": draw(st.lists(filters(), max_size=2)),
    }
    interval = draw(st.sampled_from(["hour", "day", "week", "month"]))
    if kind == "TrendsQuery":
        q["series"] = [_node(draw) for _ in range(draw(st.integers(1, 3)))]
        q["interval"] = interval
        if draw(st.booleans()):
            q["trendsFilter"] = {"formula": draw(FORMULAS)}
        if draw(st.booleans()):
            q["breakdownFilter"] = {
                "breakdown": "$browser",
                "breakdown_limit": draw(st.integers(-5, 20_000)),
            }
    elif kind == "FunnelsQuery":
        q["series"] = [_node(draw) for _ in range(draw(st.integers(2, 4)))]
        q["funnelsFilter"] = {
            "funnelWindowInterval": draw(st.one_of(st.integers(1, 30), st.integers(-5, 10**20))),
            "funnelWindowIntervalUnit": draw(
                st.sampled_from(["second", "minute", "hour", "day", "week", "month"])
            ),
            "funnelOrderType": draw(st.sampled_from(["ordered", "strict", "unordered"])),
        }
        if draw(st.booleans()):
            # The step range: in range, out of it, or reversed.
            q["funnelsFilter"]["funnelFromStep"] = draw(st.integers(-2, 5))
            q["funnelsFilter"]["funnelToStep"] = draw(st.integers(-2, 5))
    elif kind == "RetentionQuery":
        q["retentionFilter"] = {
            "targetEntity": {"id": "signup", "type": "events"},
            "returningEntity": {"id": "$pageview", "type": "events"},
            "period": draw(st.sampled_from(["Hour", "Day", "Week", "Month"])),
            "totalIntervals": draw(st.integers(-2, 2000)),
            "cumulative": draw(st.booleans()),
            "minimumOccurrences": draw(st.one_of(st.integers(1, 3), st.integers(-2, 10**7))),
        }
        if draw(st.booleans()):
            q["breakdownFilter"] = {
                "breakdowns": [
                    {
                        "property": "$browser",
                        "type": draw(st.sampled_from(["event", "person", "cohort"])),
                    }
                    for _ in range(draw(st.integers(0, 2)))
                ]
            }
    else:
        q["series"] = [_node(draw)]
        q["interval"] = interval
    return q


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_queries(draw: st.DrawFn) -> Any:
    """A valid-shaped query with one value (or the whole query) replaced by a hostile one, or an
    unknown field added."""
    q = copy.deepcopy(draw(valid_shaped_queries()))
    paths = _paths(q)
    path = draw(st.sampled_from(paths))
    value = draw(HOSTILE)
    if not path:
        return value if draw(st.booleans()) else {**q, draw(st.text(max_size=8)): value}
    target: Any = q
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return q


def queries() -> st.SearchStrategy[Any]:
    """Valid-shaped and mutated queries, half and half."""
    return st.one_of(valid_shaped_queries(), mutated_queries())
