"""Hypothesis strategies: event sets (persons with several distinct ids, ties, DST-crossing
times) and insight queries of every kind and option, for the differential tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from hypothesis import strategies as st

from eventlens.query.model import MathType
from eventlens.query.posthog_fields import (
    AGGREGATED_DISPLAYS,
    CUMULATIVE_DISPLAY,
    TIME_SERIES_DISPLAYS,
)

NOW = "2024-04-03T12:00:00Z"
# A month that contains both the US (Mar 10) and the EU (Mar 31) spring-forward.
BASE = datetime(2024, 3, 5, tzinfo=UTC)
SPAN_S = 30 * 86_400
TIMEZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata")
EVENTS = ("$pageview", "signup", "purchase", "other")
BROWSERS = ("Chrome", "Firefox", "Safari", "", None, 7, True)
COUNTRIES = ("DE", "US", "FR", None)
REVENUE = (1, 2.5, 10, "12", "abc", None, 0, -3)
WHEN = ("2024-03-10", "2024-03-20T10:00:00Z", "2024-03-10T23:30:00-02:00", "soon", None)


def person_uuid(i: int) -> str:
    # The first 8 hex digits decide the bucket (schema.bucket_of): spread persons over buckets.
    return f"{i * 2654435761 % 2**32:08x}-0000-4000-8000-{i:012x}"


@st.composite
def event_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    n_persons = draw(st.integers(1, 10))
    # Identity joins: a person may own several distinct ids.
    ids = {p: [f"d{p}-{k}" for k in range(draw(st.integers(1, 3)))] for p in range(n_persons)}
    # A small set of instants so ties (equal timestamps) are common.
    instants = draw(st.lists(st.integers(0, SPAN_S), min_size=1, max_size=12))
    events = []
    for k in range(draw(st.integers(0, 45))):
        p = draw(st.integers(0, n_persons - 1))
        base = draw(st.sampled_from(instants))
        offset = draw(st.sampled_from((0, 0, 1, 59, 3600, 86_400, 3 * 86_400)))
        ts = BASE + timedelta(seconds=min(SPAN_S, base + offset))
        props: dict[str, Any] = {}
        browser = draw(st.sampled_from(BROWSERS))
        if browser is not None or draw(st.booleans()):
            props["$browser"] = browser
        revenue = draw(st.sampled_from(REVENUE))
        if revenue is not None:
            props["revenue"] = revenue
        when = draw(st.sampled_from(WHEN))
        if when is not None:
            props["when"] = when
        person_props = {}
        country = draw(st.sampled_from(COUNTRIES))
        if country is not None:
            person_props["country"] = country
        events.append(
            {
                "uuid": f"{k:04d}-{draw(st.integers(0, 99)):02d}",
                "event": draw(st.sampled_from(EVENTS)),
                "distinct_id": draw(st.sampled_from(ids[p])),
                "person_id": person_uuid(p),
                "timestamp": ts.isoformat(),
                "properties": props,
                "person_properties": person_props,
            }
        )
    return events


FILTERS: tuple[dict[str, Any], ...] = (
    {"key": "$browser", "value": "Chrome", "operator": "exact"},
    {"key": "$browser", "value": ["Chrome", "Safari"], "operator": "exact"},
    {"key": "$browser", "value": "Chrome", "operator": "is_not"},
    {"key": "$browser", "value": "fire", "operator": "icontains"},
    {"key": "$browser", "value": "^S", "operator": "regex"},
    {"key": "$browser", "operator": "is_set"},
    {"key": "$browser", "operator": "is_not_set"},
    {"key": "revenue", "value": 2, "operator": "gt"},
    {"key": "revenue", "value": "2.5", "operator": "gte"},
    {"key": "revenue", "value": 1, "operator": "lt"},
    {"key": "$browser", "value": "^(Chrome|7)$", "operator": "not_regex"},
    {"key": "when", "value": "2024-03-15", "operator": "is_date_before"},
    {"key": "when", "value": "2024-03-10", "operator": "is_date_exact"},
    {"key": "when", "value": "2024-03-10T12:00:00Z", "operator": "is_date_after"},
    {"key": "revenue", "value": "10", "operator": "lte"},
    {"key": "country", "value": "DE", "operator": "exact", "type": "person"},
    {"key": "country", "value": "U", "operator": "not_icontains", "type": "person"},
    {
        "type": "OR",
        "values": [
            {"key": "$browser", "value": "Chrome", "operator": "exact"},
            {"key": "country", "value": "US", "operator": "exact", "type": "person"},
        ],
    },
    {
        "type": "OR",
        "values": [
            {
                "type": "AND",
                "values": [
                    {"key": "revenue", "operator": "is_set"},
                    {"key": "$browser", "value": "Safari", "operator": "is_not"},
                ],
            },
            {"type": "AND", "values": []},
        ],
    },
    {"type": "OR", "values": []},
)


def filters() -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(st.sampled_from(FILTERS), max_size=2)


DATE_RANGES: tuple[dict[str, Any], ...] = (
    {},
    {"date_from": "-7d"},
    {"date_from": "-14d", "date_to": "-2d"},
    {"date_from": "all"},
    {"date_from": "2024-03-09", "date_to": "2024-03-12"},
    {"date_from": "2024-03-28", "date_to": "2024-04-02"},
    {"date_from": "2024-03-10T03:00:00", "date_to": "2024-03-11T05:30:00"},
    {"date_from": "-2w"},
)
HOUR_RANGES: tuple[dict[str, Any], ...] = (
    {"date_from": "-24h"},
    {"date_from": "2024-03-09", "date_to": "2024-03-11"},
    {"date_from": "2024-03-30T20:00:00", "date_to": "2024-04-01T02:00:00"},
)
# Every math the query model accepts: a new one is generated here (and must match) at once.
TREND_MATHS: tuple[str, ...] = get_args(MathType)


@st.composite
def _interval_and_range(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    interval = draw(st.sampled_from(("hour", "day", "day", "week", "month")))
    ranges = HOUR_RANGES if interval == "hour" else DATE_RANGES
    return interval, dict(draw(st.sampled_from(ranges)))


def _event() -> st.SearchStrategy[str | None]:
    return st.sampled_from((*EVENTS, None))


@st.composite
def _series(draw: st.DrawFn, maths: tuple[str, ...] = ("total",)) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "EventsNode", "event": draw(_event())}
    math = draw(st.sampled_from(maths))
    if math != "total":
        node["math"] = math
    if math in ("sum", "avg", "min", "max", "median", "p75", "p90", "p95", "p99"):
        node["math_property"] = "revenue"
    props = draw(filters())
    if props:
        node["properties"] = props
    return node


@st.composite
def _breakdown(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    kind = draw(st.sampled_from(("event", "person")))
    key = "$browser" if kind == "event" else "country"
    return {"breakdown": key, "breakdown_type": kind, "breakdown_limit": draw(st.integers(1, 4))}


@st.composite
def trends_queries(draw: st.DrawFn) -> dict[str, Any]:
    interval, date_range = draw(_interval_and_range())
    series = draw(st.lists(_series(TREND_MATHS), min_size=1, max_size=2))
    q: dict[str, Any] = {
        "kind": "TrendsQuery",
        "series": series,
        "interval": interval,
        "dateRange": date_range,
        "properties": draw(filters()),
    }
    bd = draw(_breakdown())
    if bd and draw(st.booleans()):
        # PostHog's multiple breakdowns: 2 or 3 of the event and person properties.
        props = [
            {"property": "$browser", "type": "event"},
            {"property": "country", "type": "person"},
        ]
        props += [{"property": "revenue", "type": "event"}][: draw(st.integers(0, 1))]
        bd = {"breakdowns": props, "breakdown_limit": bd["breakdown_limit"]}
    if bd:
        q["breakdownFilter"] = bd
    tf: dict[str, Any] = {}
    if len(series) == 2 and draw(st.booleans()):
        tf["formula"] = draw(st.sampled_from(("A+B", "A/B*100", "A-B")))
    display = draw(st.sampled_from((None, *DISPLAYS)))
    if display is not None:
        tf["display"] = display
    if draw(st.booleans()):
        tf["smoothingIntervals"] = draw(st.integers(1, 4))
    if tf:
        q["trendsFilter"] = tf
    _maybe_compare(draw, q)
    return q


# PostHog's trends displays EventLens answers: time series, cumulative, then the aggregated ones.
DISPLAYS = (*TIME_SERIES_DISPLAYS, CUMULATIVE_DISPLAY, *AGGREGATED_DISPLAYS)


def _maybe_compare(draw: st.DrawFn, q: dict[str, Any]) -> None:
    """compareFilter (never with date_from all, which has no previous period)."""
    if q["dateRange"].get("date_from") == "all" or not draw(st.booleans()):
        return
    cf: dict[str, Any] = {"compare": draw(st.sampled_from((True, True, False)))}
    to = draw(st.sampled_from((None, "-1d", "-1w", "-1m", "-3h")))
    if to is not None:
        cf["compare_to"] = to
    q["compareFilter"] = cf


@st.composite
def funnels_queries(draw: st.DrawFn) -> dict[str, Any]:
    steps = draw(st.lists(_series(), min_size=2, max_size=3))
    order = draw(st.sampled_from(("ordered", "strict", "unordered")))
    ff: dict[str, Any] = {
        "funnelOrderType": order,
        "funnelWindowInterval": draw(st.sampled_from((1, 2, 14))),
        "funnelWindowIntervalUnit": draw(
            st.sampled_from(("second", "minute", "hour", "day", "week", "month"))
        ),
        # Read by PostHog's frontend only (and the step range only by other views).
        "funnelStepReference": draw(st.sampled_from(("total", "previous"))),
        "layout": draw(st.sampled_from(("vertical", "horizontal"))),
    }
    if draw(st.booleans()):
        ff["funnelFromStep"] = 0
        ff["funnelToStep"] = len(steps) - 1
    if order != "unordered" and draw(st.booleans()):
        i = draw(st.integers(0, len(steps) - 2))
        j = draw(st.integers(i + 1, len(steps) - 1))
        ff["exclusions"] = [
            {"kind": "EventsNode", "event": draw(_event()), "funnelFromStep": i, "funnelToStep": j}
        ]
    q: dict[str, Any] = {
        "kind": "FunnelsQuery",
        "series": steps,
        "dateRange": dict(draw(st.sampled_from(DATE_RANGES))),
        "properties": draw(filters()),
        "funnelsFilter": ff,
    }
    bd = draw(_breakdown())
    if bd:
        q["breakdownFilter"] = bd
        attribution = draw(st.sampled_from(("first_touch", "last_touch", "all_events", "step")))
        ff["breakdownAttributionType"] = attribution
        if attribution == "step":
            ff["breakdownAttributionValue"] = draw(st.integers(0, len(steps) - 1))
    return q


@st.composite
def funnel_view_queries(draw: st.DrawFn) -> dict[str, Any]:
    """A funnel with the time_to_convert or trends view (no breakdown: those views refuse one),
    a random step range and, for the histogram, an automatic or given bin count."""
    q = draw(funnels_queries())
    q.pop("breakdownFilter", None)
    ff = q["funnelsFilter"]
    for key in ("breakdownAttributionType", "breakdownAttributionValue"):
        ff.pop(key, None)
    n = len(q["series"])
    ff["funnelFromStep"] = draw(st.integers(0, n - 2))
    ff["funnelToStep"] = draw(st.integers(ff["funnelFromStep"] + 1, n - 1))
    ff["funnelVizType"] = draw(st.sampled_from(("time_to_convert", "trends")))
    if ff["funnelVizType"] == "trends":
        interval, date_range = draw(_interval_and_range())
        q["interval"], q["dateRange"] = interval, date_range
    elif draw(st.booleans()):
        ff["binCount"] = draw(st.integers(-1, 120))
    return q


@st.composite
def retention_queries(draw: st.DrawFn) -> dict[str, Any]:
    def entity() -> dict[str, Any]:
        # None: PostHog's "All events" entity.
        e: dict[str, Any] = {"id": draw(st.sampled_from((*EVENTS, None))), "type": "events"}
        props = draw(filters())
        if props:
            e["properties"] = props
        return e

    q: dict[str, Any] = {
        "kind": "RetentionQuery",
        "dateRange": dict(draw(st.sampled_from(DATE_RANGES[:3] + DATE_RANGES[4:]))),
        "properties": draw(filters()),
        "retentionFilter": {
            "targetEntity": entity(),
            "returningEntity": entity(),
            "period": draw(st.sampled_from(("Hour", "Day", "Week", "Month"))),
            # Past 62 periods the kernel switches from per-person bit masks to dense blocks.
            "totalIntervals": draw(st.one_of(st.integers(1, 10), st.integers(62, 66))),
            "retentionType": draw(st.sampled_from(("retention_recurring", "retention_first_time"))),
            "cumulative": draw(st.sampled_from((False, True, None))),
            "minimumOccurrences": draw(st.sampled_from((1, 1, 2, 3))),
            # Presentation: PostHog's UI derives these from the same counts.
            "meanRetentionCalculation": draw(st.sampled_from(("simple", "weighted", "none"))),
            "retentionReference": draw(st.sampled_from(("total", "previous"))),
        },
    }
    bd = draw(_breakdown())
    if bd:
        # PostHog's UI sends a retention breakdown as a one-item `breakdowns` list.
        if draw(st.booleans()):
            bd = {
                "breakdowns": [{"property": bd["breakdown"], "type": bd["breakdown_type"]}],
                "breakdown_limit": bd["breakdown_limit"],
            }
        q["breakdownFilter"] = bd
    return q


@st.composite
def stickiness_queries(draw: st.DrawFn) -> dict[str, Any]:
    interval, date_range = draw(_interval_and_range())
    q: dict[str, Any] = {
        "kind": "StickinessQuery",
        "series": draw(st.lists(_series(("total", "dau")), min_size=1, max_size=2)),
        "interval": interval,
        "dateRange": date_range,
        "properties": draw(filters()),
    }
    sf: dict[str, Any] = {}
    if draw(st.booleans()):
        sf["computedAs"] = draw(st.sampled_from(("cumulative", "non_cumulative")))
    if draw(st.booleans()):
        op = draw(st.sampled_from(("gte", "lte", "exact")))
        sf["stickinessCriteria"] = {"operator": op, "value": draw(st.integers(1, 3))}
    if sf:
        q["stickinessFilter"] = sf
    _maybe_compare(draw, q)
    return q


@st.composite
def lifecycle_queries(draw: st.DrawFn) -> dict[str, Any]:
    interval, date_range = draw(_interval_and_range())
    return {
        "kind": "LifecycleQuery",
        "series": [draw(_series())],
        "interval": interval,
        "dateRange": date_range,
        "properties": draw(filters()),
    }


# -- paths ------------------------------------------------------------------------------------
PATH_URLS = ("/home", "/home/", "/pricing", "/product/1", "/product/22/", "/u/7", "", None, 5)
PATH_SCREENS = ("Home", "Cart", None)
PATH_EVENTS = ("$pageview", "$pageview", "$pageview", "$screen", "signup", "purchase", "$identify")
# Gaps between a person's consecutive events: same instant, short, exactly the 30-minute
# session limit, one microsecond-ish over it (a second), a day.
PATH_GAPS_S = (0, 1, 60, 600, 1800, 1801, 86_400)
PATH_NODES = ("/home", "/pricing", "/product/*", "/product/1", "/u/:id", "Home", "signup", "nope")


@st.composite
def path_event_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Persons walking through pages, screens and custom events with session-sized gaps."""
    n_persons = draw(st.integers(1, 8))
    events = []
    k = 0
    for p in range(n_persons):
        ids = [f"d{p}-{i}" for i in range(draw(st.integers(1, 2)))]
        # Starts inside the ranges the queries pick (DATE_RANGES, most often "all" or -7d).
        t = draw(st.sampled_from((4, 23, 25, 27))) * 86_400 + draw(st.integers(0, 86_400))
        for _ in range(draw(st.integers(0, 9))):
            t = min(SPAN_S, t + draw(st.sampled_from(PATH_GAPS_S)))
            event = draw(st.sampled_from(PATH_EVENTS))
            props: dict[str, Any] = {}
            if event == "$pageview":
                url = draw(st.sampled_from(PATH_URLS))
                if url is not None:
                    props["$current_url"] = url
            elif event == "$screen":
                name = draw(st.sampled_from(PATH_SCREENS))
                if name is not None:
                    props["$screen_name"] = name
            browser = draw(st.sampled_from(BROWSERS))
            if browser is not None:
                props["$browser"] = browser
            events.append(
                {
                    "uuid": f"{k:04d}-{draw(st.integers(0, 99)):02d}",
                    "event": event,
                    "distinct_id": draw(st.sampled_from(ids)),
                    "person_id": person_uuid(p),
                    "timestamp": (BASE + timedelta(seconds=t)).isoformat(),
                    "properties": props,
                    "person_properties": {},
                }
            )
            k += 1
    return events


@st.composite
def paths_queries(draw: st.DrawFn, funnels: bool = True) -> dict[str, Any]:
    pf: dict[str, Any] = {}
    if draw(st.booleans()):
        pf["includeEventTypes"] = draw(
            st.lists(
                st.sampled_from(("$pageview", "$screen", "custom_event")), min_size=1, unique=True
            )
        )
    for key in ("startPoint", "endPoint"):
        if draw(st.integers(0, 3)) == 0:
            pf[key] = draw(st.sampled_from(PATH_NODES))
    if draw(st.booleans()):
        pf["stepLimit"] = draw(st.integers(2, 6))
    if draw(st.booleans()):
        pf["edgeLimit"] = draw(st.integers(1, 8))
    if draw(st.integers(0, 3)) == 0:
        pf["minEdgeWeight"] = draw(st.integers(0, 2))
    if draw(st.integers(0, 3)) == 0:
        pf["maxEdgeWeight"] = draw(st.integers(2, 4))
    if draw(st.integers(0, 2)) == 0:
        pf["excludeEvents"] = draw(
            st.lists(st.sampled_from(("signup", "/pricing", "$screen", "/product/*")), max_size=2)
        )
    if draw(st.booleans()):
        pf["pathGroupings"] = ["/product/*"]
    if draw(st.booleans()):
        pf["localPathCleaningFilters"] = [{"alias": "/u/:id", "regex": r"/u/\d+"}]
    q: dict[str, Any] = {
        "kind": "PathsQuery",
        "dateRange": dict(draw(st.sampled_from(({"date_from": "all"}, *DATE_RANGES)))),
        "properties": draw(st.lists(st.sampled_from(FILTERS), max_size=1)),
        "pathsFilter": pf,
    }
    if funnels and draw(st.integers(0, 3)) == 0:
        path_type = draw(
            st.sampled_from(
                (
                    "funnel_path_before_step",
                    "funnel_path_after_step",
                    "funnel_path_between_steps",
                )
            )
        )
        step = draw(
            st.sampled_from((2, -2) if path_type == "funnel_path_between_steps" else (1, 2, -2))
        )
        q["funnelPathsFilter"] = {
            "funnelPathType": path_type,
            "funnelStep": step,
            "funnelSource": {
                "kind": "FunnelsQuery",
                "series": [
                    {"event": "$pageview"},
                    {"event": draw(st.sampled_from(("signup", "purchase")))},
                ],
                "funnelsFilter": {
                    "funnelOrderType": draw(st.sampled_from(("ordered", "strict", "unordered"))),
                    "funnelWindowInterval": draw(st.sampled_from((1, 14))),
                    "funnelWindowIntervalUnit": draw(st.sampled_from(("hour", "day"))),
                },
            },
        }
    return q


@st.composite
def path_actor_queries(draw: st.DrawFn) -> dict[str, Any]:
    """A paths query with an edge / drop-off selector (actors)."""
    q = draw(paths_queries())
    nodes = ("/home", "/pricing", "/product/*", "/product/1", "signup", "Home")
    pf = q["pathsFilter"]
    which = draw(st.sampled_from(("start", "end", "edge", "dropoff", "dropoff_start")))
    step = draw(st.sampled_from((1, 1, 1, 2, 3)))  # early steps: where most edges are
    if which in ("start", "edge", "dropoff_start"):
        pf["pathStartKey"] = f"{step}_{draw(st.sampled_from(nodes))}"
    if which in ("end", "edge"):
        pf["pathEndKey"] = f"{step + 1}_{draw(st.sampled_from(nodes))}"
    if which in ("dropoff", "dropoff_start"):
        pf["pathDropoffKey"] = (
            f"{draw(st.sampled_from((1, 2, 2, 3)))}_{draw(st.sampled_from(nodes))}"
        )
    return q
