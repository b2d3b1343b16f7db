"""parse_query: each kind of bad input is an InvalidQuery naming the field; good input parses."""

from __future__ import annotations

from typing import Any

import pytest

from eventlens.errors import InvalidQuery
from eventlens.query import (
    FunnelsQuery,
    LifecycleQuery,
    RetentionQuery,
    StickinessQuery,
    TrendsQuery,
    parse_query,
)
from eventlens.query.model import PropertyGroup


def trends(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview"}],
        **extra,
    }


def funnel(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "FunnelsQuery",
        "series": [{"event": "a"}, {"event": "b"}, {"event": "c"}],
        **extra,
    }


def test_minimal_queries_of_every_kind_parse_with_posthog_defaults() -> None:
    t = parse_query(trends())
    assert isinstance(t, TrendsQuery)
    assert (t.interval, t.series[0].math, t.dateRange.date_from) == ("day", "total", None)
    f = parse_query(funnel())
    assert isinstance(f, FunnelsQuery)
    ff = f.funnelsFilter
    assert (ff.funnelWindowInterval, ff.funnelWindowIntervalUnit, ff.funnelOrderType) == (
        14,
        "day",
        "ordered",
    )
    assert ff.breakdownAttributionType == "first_touch"
    r = parse_query({"kind": "RetentionQuery"})
    assert isinstance(r, RetentionQuery)
    rf = r.retentionFilter
    assert (rf.targetEntity.id, rf.returningEntity.id, rf.period, rf.totalIntervals) == (
        "$pageview",
        "$pageview",
        "Day",
        8,
    )
    assert rf.retentionType == "retention_recurring"
    assert isinstance(parse_query({**trends(), "kind": "StickinessQuery"}), StickinessQuery)
    assert isinstance(parse_query({**trends(), "kind": "LifecycleQuery"}), LifecycleQuery)
    b = parse_query(trends(breakdownFilter={"breakdown": "$browser"}))
    assert isinstance(b, TrendsQuery) and b.breakdownFilter is not None
    assert (b.breakdownFilter.breakdown_limit, b.breakdownFilter.breakdown_type) == (25, "event")


def test_posthog_property_group_nests_and_or() -> None:
    q = parse_query(
        trends(
            properties={
                "type": "AND",
                "values": [
                    {
                        "type": "OR",
                        "values": [
                            {"key": "$browser", "value": ["Chrome"], "operator": "exact"},
                            {"key": "plan", "value": "pro", "type": "person"},
                        ],
                    }
                ],
            }
        )
    )
    assert isinstance(q.properties, PropertyGroup)
    inner = q.properties.values[0]
    assert isinstance(inner, PropertyGroup) and inner.type == "OR"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"series": []}, "kind"),
        ({**trends(), "kind": "PathsQuery"}, "kind"),
        (trends(samplingFactor=0.1), "samplingFactor"),
        (trends(series=[{"event": "a", "math": "p42"}]), "series[0].math"),
        (trends(series=[{"event": "a", "math": "sum"}]), "series[0].math_property"),
        (trends(series=[{"event": "a", "foo": 1}]), "series[0].foo"),
        (trends(interval="minute"), "interval"),
        (trends(series=[]), "series"),
        (
            trends(properties=[{"key": "k", "value": "v", "operator": "between"}]),
            "properties[0].operator",
        ),
        (
            trends(properties=[{"key": "k", "value": "v", "type": "group"}]),
            "properties[0].type",
        ),
        (
            trends(properties=[{"key": "k", "value": "(unclosed", "operator": "regex"}]),
            "properties[0].value",
        ),
        (
            trends(
                series=[
                    {
                        "event": "a",
                        "properties": [{"key": "k", "value": "a**+", "operator": "not_regex"}],
                    }
                ]
            ),
            "series[0].properties[0].value",
        ),
        (
            trends(
                properties={
                    "type": "OR",
                    "values": [{"key": "k", "value": ["a", "b"], "operator": "gt"}],
                }
            ),
            "properties.values[0].value",
        ),
        (trends(dateRange={"date_from": "last tuesday"}), "dateRange.date_from"),
        (trends(dateRange={"date_to": "all"}), "dateRange.date_to"),
        (
            trends(breakdownFilter={"breakdown": "x", "breakdown_limit": 0}),
            "breakdownFilter.breakdown_limit",
        ),
        (
            trends(breakdownFilter={"breakdown": "x", "breakdown_type": "cohort"}),
            "breakdownFilter.breakdown_type",
        ),
        (trends(trendsFilter={"formula": "A/C"}), "trendsFilter.formula"),
        (trends(trendsFilter={"formula": "__import__('os')"}), "trendsFilter.formula"),
        (trends(filterTestAccounts=True), "filterTestAccounts"),
        (funnel(series=[{"event": "a"}]), "series"),
        (funnel(series=[{"event": "a", "math": "dau"}, {"event": "b"}]), "series[0].math"),
        (funnel(funnelsFilter={"funnelOrderType": "random"}), "funnelsFilter.funnelOrderType"),
        (
            funnel(funnelsFilter={"funnelWindowIntervalUnit": "year"}),
            "funnelsFilter.funnelWindowIntervalUnit",
        ),
        (
            funnel(
                funnelsFilter={
                    "exclusions": [{"event": "x", "funnelFromStep": 1, "funnelToStep": 3}]
                }
            ),
            "funnelsFilter.exclusions[0].funnelToStep",
        ),
        (
            funnel(funnelsFilter={"breakdownAttributionType": "step"}),
            "funnelsFilter.breakdownAttributionValue",
        ),
        (
            {"kind": "RetentionQuery", "retentionFilter": {"period": "Year"}},
            "retentionFilter.period",
        ),
        (
            {
                "kind": "RetentionQuery",
                "retentionFilter": {"targetEntity": {"id": "a", "type": "actions"}},
            },
            "retentionFilter.targetEntity.type",
        ),
        (
            {**trends(), "kind": "LifecycleQuery", "series": [{"event": "a"}, {"event": "b"}]},
            "series",
        ),
    ],
)
def test_bad_input_names_the_field(query: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_query(query)
    assert info.value.field == field, info.value.message
    assert field in info.value.message or field == "kind"


def test_non_object_query_is_invalid() -> None:
    with pytest.raises(InvalidQuery):
        parse_query([1, 2])


def test_unsupported_field_message_says_unsupported() -> None:
    with pytest.raises(
        InvalidQuery, match=r"unsupported field 'breakdownFilter\.breakdown_hide_other_aggregation'"
    ):
        parse_query(
            trends(breakdownFilter={"breakdown": "x", "breakdown_hide_other_aggregation": True})
        )


def test_posthog_nulls_and_omitted_event_mean_defaults() -> None:
    q = parse_query(trends(series=[{"kind": "EventsNode", "properties": None}], properties=None))
    assert isinstance(q, TrendsQuery)
    assert q.series[0].event is None and q.series[0].properties == [] and q.properties == []


def test_invalid_query_serialises_for_http() -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_query(trends(series=[{"event": "a", "math": "p42"}]))
    body = info.value.to_dict()
    assert body["type"] == "InvalidQuery" and body["field"] == "series[0].math"
    assert "series[0].math" in body["detail"]
