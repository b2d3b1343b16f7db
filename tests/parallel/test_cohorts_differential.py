"""Differential tests for cohorts: cohort filters (in / not_in, globally, on a series or an
entity) on every insight kind, and cohort breakdowns on trends, funnels and retention, return
exactly the reference engine's answer on the parallel engine, from resident buckets and from
Parquet scans, with generated static and dynamic cohorts (person properties of the latest
event, behavioural counts in resolved windows, negation, nested groups)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.query.cohorts import ResolvedCohort, parse_definition, resolve
from eventlens.query.testing import parse_instant
from tests.parallel import strategies as s
from tests.parallel.support import compare_engines

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LAYOUTS = st.tuples(
    st.sampled_from((1, 2, 16)),  # person buckets
    st.sampled_from(("inline", "local")),
    st.sampled_from((0, 10**9)),  # min_task_rows: one sub-task per bucket, or all in one
    st.booleans(),  # resident buckets, else the Parquet scan path
    st.sampled_from(s.TIMEZONES),
)

PERSON = (
    {"type": "person", "key": "country", "operator": "exact", "value": "DE"},
    {"type": "person", "key": "country", "operator": "is_set"},
    {"type": "person", "key": "country", "operator": "icontains", "value": "u"},
)


@st.composite
def _behavioural(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "behavioral",
        "key": draw(st.sampled_from(("$pageview", "signup"))),
        "event_type": "events",
        "time_value": draw(st.sampled_from((1, 2, 7, 30))),
        "time_interval": draw(st.sampled_from(("day", "week", "month"))),
        "negation": draw(st.sampled_from((False, False, True))),
    }
    if draw(st.booleans()):
        out["value"] = "performed_event"
    else:
        out["value"] = "performed_event_multiple"
        out["operator"] = draw(st.sampled_from(("gte", "lte", "exact")))
        out["operator_value"] = draw(st.sampled_from((0, 1, 1, 2, 2, 3)))
    return out


def _condition() -> st.SearchStrategy[dict[str, Any]]:
    person = st.builds(
        lambda c, neg: {**c, "negation": neg}, st.sampled_from(PERSON), st.booleans()
    )
    return st.one_of(person, _behavioural())


def _group(items: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda t, v: {"type": t, "values": v},
        st.sampled_from(("AND", "OR")),
        st.lists(items, min_size=1, max_size=2),
    )


# A top group of conditions and groups of conditions (two levels of nesting).
GROUPS = _group(st.one_of(_condition(), _group(_condition())))


@st.composite
def cohorts(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Cohorts 1..n: static ones list some of the generated persons, dynamic ones a group."""
    out = []
    for cid in range(1, draw(st.integers(1, 3)) + 1):
        if draw(st.booleans()):
            people = draw(st.lists(st.integers(0, 5), min_size=1, max_size=4))
            out.append({"id": cid, "members": sorted({s.person_uuid(p) for p in people})})
        else:
            out.append({"id": cid, "filters": {"properties": draw(GROUPS)}})
    return out


def _lookup(defs: list[dict[str, Any]], timezone: str) -> Any:
    now = parse_instant(s.NOW)
    resolved: dict[int, ResolvedCohort] = {}
    for d in defs:
        members = frozenset(d["members"]) if "members" in d else None
        definition = None if members is not None else parse_definition(d["filters"])
        resolved[d["id"]] = resolve(
            d["id"],
            f"cohort {d['id']}",
            members=members,
            definition=definition,
            timezone=timezone,
            now=now,
        )
    return resolved.get


@st.composite
def _cohort_filter(draw: st.DrawFn, ids: list[int]) -> dict[str, Any]:
    return {
        "type": "cohort",
        "key": "id",
        "value": draw(st.sampled_from(ids)),
        "operator": draw(st.sampled_from(("in", "not_in", "exact"))),
    }


def _with_cohorts(draw: st.DrawFn, query: dict[str, Any], ids: list[int]) -> dict[str, Any]:
    q = dict(query)
    where = draw(st.sampled_from(("global", "node", "breakdown", "both")))
    if where in ("global", "both"):
        own = q.get("properties") or []
        extra = draw(_cohort_filter(ids))
        if isinstance(own, dict):
            q["properties"] = {"type": "AND", "values": [own, extra]}
        else:
            q["properties"] = [*own, extra]
    if where == "node":
        if q["kind"] == "RetentionQuery":
            rf = dict(q.get("retentionFilter") or {})
            entity = dict(rf.get("targetEntity") or {"id": "$pageview", "type": "events"})
            entity["properties"] = [draw(_cohort_filter(ids))]
            rf["targetEntity"] = entity
            q["retentionFilter"] = rf
        else:
            series = [dict(n) for n in q["series"]]
            series[0]["properties"] = [draw(_cohort_filter(ids))]
            q["series"] = series
    if where in ("breakdown", "both") and q["kind"] in (
        "TrendsQuery",
        "FunnelsQuery",
        "RetentionQuery",
    ):
        chosen = draw(st.lists(st.sampled_from([*ids, "all"]), min_size=1, max_size=3, unique=True))
        q["breakdownFilter"] = {"breakdown_type": "cohort", "breakdown": chosen}
    return q


QUERIES = {
    "TrendsQuery": s.trends_queries(),
    "FunnelsQuery": s.funnels_queries(),
    "RetentionQuery": s.retention_queries(),
    "StickinessQuery": s.stickiness_queries(),
    "LifecycleQuery": s.lifecycle_queries(),
}


def _run(data: st.DataObject, kind: str) -> None:
    events = data.draw(s.event_sets())
    defs = data.draw(cohorts())
    buckets, executor, min_rows, resident, timezone = data.draw(LAYOUTS)
    query = data.draw(QUERIES[kind])
    query = _with_cohorts(data.draw, query, [d["id"] for d in defs])
    compare_engines(
        events,
        query,
        buckets=buckets,
        executor=executor,
        timezone=timezone,
        now=s.NOW,
        min_task_rows=min_rows,
        resident=resident,
        cohorts=_lookup(defs, timezone),
    )


@SETTINGS
@given(st.data())
def test_trends(data: st.DataObject) -> None:
    _run(data, "TrendsQuery")


@SETTINGS
@given(st.data())
def test_funnels(data: st.DataObject) -> None:
    _run(data, "FunnelsQuery")


@SETTINGS
@given(st.data())
def test_retention(data: st.DataObject) -> None:
    _run(data, "RetentionQuery")


@SETTINGS
@given(st.data())
def test_stickiness(data: st.DataObject) -> None:
    _run(data, "StickinessQuery")


@SETTINGS
@given(st.data())
def test_lifecycle(data: st.DataObject) -> None:
    _run(data, "LifecycleQuery")
