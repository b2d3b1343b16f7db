"""parse_query: each kind of bad input is an InvalidQuery naming the field; good input parses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from eventlens.errors import InvalidQuery
from eventlens.query import (
    FunnelsQuery,
    LifecycleQuery,
    RetentionQuery,
    StickinessQuery,
    TrendsQuery,
    parse_query,
)
from eventlens.query.dates import to_us
from eventlens.query.model import PropertyGroup
from eventlens.query.normalise import normalise
from tests.support.query_strategies import queries


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
        ({**trends(), "kind": "HogQLQuery"}, "kind"),
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
            # A cohort breakdown names cohort ids (test_cohorts_golden.py), not a property.
            trends(breakdownFilter={"breakdown": "x", "breakdown_type": "cohort"}),
            "breakdownFilter.breakdown",
        ),
        (trends(trendsFilter={"formula": "A/C"}), "trendsFilter.formula"),
        (trends(trendsFilter={"formula": "__import__('os')"}), "trendsFilter.formula"),
        (trends(filterTestAccounts=1), "filterTestAccounts"),
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
    with pytest.raises(InvalidQuery, match=r"unsupported field 'breakdownFilter\.colour'"):
        parse_query(trends(breakdownFilter={"breakdown": "x", "colour": "red"}))


def test_answer_changing_posthog_field_is_not_supported_yet_and_named() -> None:
    with pytest.raises(InvalidQuery, match=r"not supported yet") as info:
        parse_query(
            trends(breakdownFilter={"breakdown": "x", "breakdown_hide_other_aggregation": True})
        )
    assert info.value.field == "breakdownFilter.breakdown_hide_other_aggregation"


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


# -- issue 10: limits and generated bad input ------------------------------------------------


@given(q=queries())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_query_is_parsed_and_normalised_or_refused_with_invalid_query(q: Any) -> None:
    """Whatever the body, validation (and date resolution in a far-offset timezone) either
    succeeds or raises InvalidQuery: never OverflowError, RecursionError, ValueError ..."""
    for tz in ("UTC", "Pacific/Kiritimati", "Etc/GMT+12"):
        try:
            nq = normalise(parse_query(q), timezone=tz, now=datetime.now(UTC))
        except InvalidQuery as exc:
            assert exc.message and len(exc.message) < 2000
            continue
        assert nq.fingerprint


@pytest.mark.parametrize("tz", ["UTC", "Pacific/Kiritimati", "Etc/GMT+12"])
@pytest.mark.parametrize("interval", ["hour", "day", "week", "month"])
def test_buckets_at_the_edges_of_the_supported_dates(tz: str, interval: str) -> None:
    for date_range in (
        {"date_from": "1970-01-01", "date_to": "1970-01-02"},
        {"date_from": "9999-12-29", "date_to": "9999-12-30"},
    ):
        q = parse_query(trends(interval=interval, dateRange=date_range))
        nq = normalise(q, timezone=tz, now=datetime.now(UTC))
        buckets = nq.buckets()
        assert 1 <= len(buckets) <= 50


def test_all_never_starts_before_1970() -> None:
    q = parse_query(trends(dateRange={"date_from": "all"}, interval="month"))
    nq = normalise(q, timezone="Etc/GMT+12", now=datetime.now(UTC))
    ancient = -62135596800000000  # 0001-01-01T00:00Z
    assert nq.buckets(ancient).starts[0].date().isoformat() == "1970-01-01"
    assert nq.all_start(ancient).isoformat().startswith("1970-01-01T00:00:00")
    later = 1_700_000_000_000_000
    assert to_us(nq.all_start(later)) == later


@pytest.mark.parametrize(
    ("query", "field", "limit"),
    [
        (trends(properties=[{"key": "k" * 1001, "value": 1}]), "properties[0].key", "1000"),
        (trends(properties=[{"key": "p", "value": ["v"] * 1001}]), "properties[0].value", "1000"),
        (trends(properties=[{"key": "p", "value": 2**64}]), "properties[0].value", "2^63"),
        (
            trends(properties=[{"key": "p", "value": "a" * 1001, "operator": "regex"}]),
            "properties[0].value",
            "1000",
        ),
        (
            trends(properties=[{"key": "p", "value": "(.*a){1000}", "operator": "regex"}]),
            "properties[0].value",
            "3000",
        ),
        (trends(properties=[{"key": "p", "value": 1}] * 201), "properties", "200"),
        (trends(dateRange={"date_from": "x" * 65}), "dateRange.date_from", "64"),
        (trends(trendsFilter={"formula": "A" + "+A" * 100}), "trendsFilter.formula", "100"),
        (trends(trendsFilter={"formula": "A*---B"}), "trendsFilter.formula", "3"),
        (
            funnel(
                funnelsFilter={"funnelWindowInterval": 122, "funnelWindowIntervalUnit": "month"}
            ),
            "funnelsFilter.funnelWindowInterval",
            "121 months",
        ),
        (
            funnel(funnelsFilter={"funnelWindowInterval": 3651}),
            "funnelsFilter.funnelWindowInterval",
            "3650 days",
        ),
    ],
)
def test_size_limits_name_field_and_limit(query: dict[str, Any], field: str, limit: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_query(query)
    assert info.value.field == field, info.value.message
    assert limit in info.value.message, info.value.message


def test_deep_json_is_refused_before_validation_recurses() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidQuery) as info:
        parse_query(trends(properties=[{"key": "p", "value": deep}]))
    assert info.value.field == "properties"
    assert "64" in info.value.message


def test_windows_at_the_limit_parse() -> None:
    for n, unit in ((3650, "day"), (121, "month"), (521, "week"), (315_360_000, "second")):
        parse_query(
            funnel(funnelsFilter={"funnelWindowInterval": n, "funnelWindowIntervalUnit": unit})
        )


@pytest.mark.parametrize(
    ("breakdown_filter", "expected"),
    [
        ({"breakdown": "plan", "breakdown_type": "person"}, ("plan", "person")),
        ({"breakdowns": [{"property": "$browser", "type": "event"}]}, ("$browser", "event")),
        ({"breakdowns": [{"property": "$browser"}]}, ("$browser", "event")),
        ({"breakdowns": []}, None),
        ({}, None),
    ],
)
def test_a_retention_breakdown_is_one_property_in_either_form(
    breakdown_filter: dict[str, Any], expected: tuple[str, str] | None
) -> None:
    from eventlens.query.posthog_fields import retention_breakdown

    q = parse_query({"kind": "RetentionQuery", "breakdownFilter": breakdown_filter})
    assert retention_breakdown(q.breakdownFilter) == expected  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("breakdown_filter", "field"),
    [
        ({"breakdowns": [{"property": "a"}, {"property": "b"}]}, "breakdownFilter.breakdowns"),
        ({"breakdown": "a", "breakdowns": [{"property": "b"}]}, "breakdownFilter.breakdowns"),
        (
            {"breakdowns": [{"property": "a", "type": "cohort"}]},
            "breakdownFilter.breakdowns[0].type",
        ),
        ({"breakdowns": [{"property": 7}]}, "breakdownFilter.breakdowns"),
        ({"breakdowns": [3]}, "breakdownFilter.breakdowns"),
        ({"breakdowns": {"property": "a"}}, "breakdownFilter.breakdowns"),
        (
            {"breakdowns": [{"property": "a", "normalize_url": True}]},
            "breakdownFilter.breakdowns[0].normalize_url",
        ),
    ],
)
def test_other_retention_breakdowns_are_400_naming_the_field(
    breakdown_filter: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidQuery) as err:
        parse_query({"kind": "RetentionQuery", "breakdownFilter": breakdown_filter})
    assert err.value.field == field


@pytest.mark.parametrize(
    ("funnels_filter", "field"),
    [
        ({"funnelFromStep": 2}, "funnelsFilter.funnelFromStep"),
        ({"funnelToStep": 3}, "funnelsFilter.funnelToStep"),
        ({"funnelFromStep": 1, "funnelToStep": 1}, "funnelsFilter.funnelToStep"),
        ({"funnelVizType": "flow"}, "funnelsFilter.funnelVizType"),
        ({"minimumOccurrences": 2}, "funnelsFilter.minimumOccurrences"),
    ],
)
def test_funnel_step_range_and_views_are_checked(
    funnels_filter: dict[str, Any], field: str
) -> None:
    three_steps = [{"event": "a"}, {"event": "b"}, {"event": "c"}]
    with pytest.raises(InvalidQuery) as err:
        parse_query(
            {"kind": "FunnelsQuery", "series": three_steps, "funnelsFilter": funnels_filter}
        )
    assert err.value.field == field
    ok = parse_query(
        {
            "kind": "FunnelsQuery",
            "series": three_steps,
            "funnelsFilter": {"funnelFromStep": 1, "funnelToStep": 2},
        }
    )
    assert ok.funnelsFilter.funnelToStep == 2  # type: ignore[union-attr]
