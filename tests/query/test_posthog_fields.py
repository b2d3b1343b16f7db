"""PostHog's answer-changing query fields EventLens implements (query/posthog_fields.py and
query/semantics/{trends_shape,compare,stickiness}.py): what is refused, and the properties of
the shared post-processing. Answers are pinned by tests/fixtures/insights and the differential
tests; this file checks the rules those cannot state one example at a time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlens.errors import InvalidQuery
from eventlens.query.model import PropertyGroup, parse_query
from eventlens.query.normalise import normalise
from eventlens.query.semantics.compare import previous_period
from eventlens.query.semantics.trends_shape import cumulative, smooth

NOW = datetime(2024, 2, 1, tzinfo=UTC)


def trends(**extra: Any) -> dict[str, Any]:
    return {"kind": "TrendsQuery", "series": [{"event": "a"}], **extra}


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        (trends(trendsFilter={"display": "BoxPlot"}), "trendsFilter.display", "not supported"),
        (trends(trendsFilter={"display": "Sparkles"}), "trendsFilter.display", "one of"),
        (trends(trendsFilter={"smoothingIntervals": 0}), "trendsFilter.smoothingIntervals", "1"),
        (
            trends(trendsFilter={"smoothingIntervals": 101}),
            "trendsFilter.smoothingIntervals",
            "100",
        ),
        (trends(compareFilter={"compare": "yes"}), "compareFilter.compare", "true or false"),
        (
            trends(compareFilter={"compare": True, "compare_to": "last week"}),
            "compareFilter.compare_to",
            "relative",
        ),
        (
            trends(compareFilter={"compare": True}, dateRange={"date_from": "all"}),
            "compareFilter.compare",
            "all-time",
        ),
        (trends(filterTestAccounts="yes"), "filterTestAccounts", "true or false"),
        (
            {
                "kind": "StickinessQuery",
                "series": [{"event": "a"}],
                "stickinessFilter": {"computedAs": "sometimes"},
            },
            "stickinessFilter.computedAs",
            "cumulative",
        ),
        (
            {
                "kind": "StickinessQuery",
                "series": [{"event": "a"}],
                "stickinessFilter": {"stickinessCriteria": {"operator": "gt", "value": 1}},
            },
            "stickinessFilter.stickinessCriteria",
            "gte",
        ),
        (
            {
                "kind": "FunnelsQuery",
                "series": [{"event": "a"}, {"event": "b"}],
                "compareFilter": {"compare": True},
            },
            "compareFilter.compare",
            "not supported",
        ),
    ],
)
def test_bad_values_are_400s_naming_posthogs_field(
    query: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(InvalidQuery, match=says) as info:
        parse_query(query)
    assert info.value.field == field


def test_stickiness_accepts_posthogs_default_dau_and_every_filter() -> None:
    parse_query(
        {
            "kind": "StickinessQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
            "stickinessFilter": {
                "computedAs": "cumulative",
                "stickinessCriteria": {"operator": "exact", "value": 3},
            },
            "compareFilter": {"compare": True, "compare_to": "-1w"},
        }
    )


@settings(deadline=None)
@given(st.lists(st.integers(0, 1000), max_size=30), st.integers(2, 10))
def test_smoothing_stays_within_the_window_and_keeps_a_constant(data: list[int], n: int) -> None:
    out = smooth([float(x) for x in data], n)
    assert len(out) == len(data)
    for j, value in enumerate(out):
        window = data[max(0, j - n + 1) : j + 1]
        assert min(window) <= value <= max(window) and value == int(value)
    assert smooth([5.0] * len(data), n) == [5.0] * len(data)


@settings(deadline=None)
@given(st.lists(st.integers(0, 1000), max_size=30))
def test_cumulative_is_monotone_and_ends_at_the_sum(data: list[int]) -> None:
    out = cumulative([float(x) for x in data])
    assert all(a <= b for a, b in itertools.pairwise(out))
    assert (out[-1] if out else 0) == sum(data)


@settings(deadline=None)
@given(
    st.dates(min_value=datetime(2001, 1, 1).date(), max_value=datetime(2030, 1, 1).date()),
    st.integers(0, 40),
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
)
def test_previous_period_is_as_long_and_ends_right_before(start: Any, days: int, tz: str) -> None:
    end = start.fromordinal(start.toordinal() + days)
    q = parse_query(
        trends(
            dateRange={"date_from": str(start), "date_to": str(end)},
            compareFilter={"compare": True},
        )
    )
    nq = normalise(q, timezone=tz, now=NOW)
    prev = previous_period(nq)
    assert len(prev.buckets()) == len(nq.buckets())
    assert prev.end_us == nq.buckets().starts_us[0]


def test_test_account_filters_are_anded_only_when_asked() -> None:
    filters = [{"key": "email", "value": "@corp", "operator": "not_icontains", "type": "person"}]
    asked = parse_query(trends(filterTestAccounts=True, properties=[{"key": "x", "value": 1}]))
    merged = normalise(asked, now=NOW, test_account_filters=filters).query
    assert isinstance(merged.properties, PropertyGroup) and merged.properties.type == "AND"
    dumped = merged.model_dump(mode="json", exclude_none=True)["properties"]
    assert dumped["values"][1]["values"][0]["key"] == "email"
    not_asked = parse_query(trends(properties=[{"key": "x", "value": 1}]))
    assert normalise(not_asked, now=NOW, test_account_filters=filters).query == not_asked
    # The filters are part of what the answer depends on, so of the cache key.
    assert (
        normalise(asked, now=NOW, test_account_filters=filters).fingerprint
        != normalise(asked, now=NOW).fingerprint
    )


def test_an_integer_beyond_64_bits_in_an_unsupported_field_is_a_400_naming_it() -> None:
    # Found by the generated-query test: the message's JSON rendering must not raise.
    query = {
        "kind": "RetentionQuery",
        "breakdownFilter": {"breakdowns": [2**70, 1]},
    }
    with pytest.raises(InvalidQuery) as info:
        parse_query(query)
    assert info.value.field == "breakdownFilter.breakdowns"
    assert str(2**70) in str(info.value)
