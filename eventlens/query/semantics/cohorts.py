"""Cohort membership and cohort breakdowns, the rules both engines share (docs/semantics.md
"Cohorts").

Membership is a function of one person's events in the snapshot:
- a static cohort holds the persons it lists;
- a person-property condition is the property-filter rule on the person properties of the
  person's latest event (by timestamp, then uuid): the event table is what a data version
  pins, so the answer is the same at that version whenever it is computed;
- a behavioural condition counts the person's events of that name inside its resolved window.
A cohort breakdown runs the query once per cohort with the cohort as a filter (a person in
several cohorts counts in each, as in PostHog) and labels each run's rows with the cohort id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from eventlens.errors import InvalidQuery
from eventlens.query.cohorts import Group, Performed, ResolvedCohort, compare
from eventlens.query.model import (
    FunnelsQuery,
    InsightQuery,
    PropertyFilter,
    PropertyGroup,
    RetentionQuery,
    TrendsQuery,
    cohort_breakdown,
    cohort_ids,
)
from eventlens.query.normalise import NormalisedQuery, with_query
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import filter_matches

ALL_USERS = 0  # PostHog's "all users" entry of a cohort breakdown


def group_matches(g: Group, latest: Event, counts: Callable[[Performed], int]) -> bool:
    """`g` for one person: `latest` carries their person properties, `counts(c)` their events
    inside c's window. An empty group matches (as an empty property group filters nothing)."""
    results = []
    for v in g.values:
        if isinstance(v, Group):
            ok = group_matches(v, latest, counts)
        elif isinstance(v, Performed):
            ok = compare(counts(v), v.op, v.n) != v.negation
        else:
            ok = filter_matches(v.filter, latest) != v.negation
        results.append(ok)
    if not results:
        return True
    return all(results) if g.type == "AND" else any(results)


def person_in(cohort: ResolvedCohort, events: Sequence[Event]) -> bool:
    """Is the person whose events (time order, then uuid) these are in `cohort`?"""
    if not events:
        return False
    if cohort.members is not None:
        return events[0].person_id in cohort.members
    assert cohort.group is not None

    def counts(c: Performed) -> int:
        return sum(1 for e in events if e.event == c.event and c.lo_us <= e.ts < c.hi_us)

    return group_matches(cohort.group, events[-1], counts)


def memberships(
    cohorts: Sequence[ResolvedCohort], events: Iterable[Event]
) -> dict[str, frozenset[int]]:
    """person_id -> the ids of the cohorts the person is in (only persons in at least one)."""
    per_person: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        per_person[e.person_id].append(e)
    out: dict[str, frozenset[int]] = {}
    for person, evs in per_person.items():
        evs.sort(key=lambda e: (e.ts, e.uuid))
        ids = frozenset(c.id for c in cohorts if person_in(c, evs))
        if ids:
            out[person] = ids
    return out


def with_members(cohorts: Sequence[ResolvedCohort], events: Sequence[Event]) -> list[Event]:
    """`events`, each carrying the cohorts its person is in (what filter_matches reads)."""
    found = memberships(cohorts, events)
    return [replace(e, cohorts=found[e.person_id]) if e.person_id in found else e for e in events]


def check_resolved(nq: NormalisedQuery) -> None:
    """InvalidQuery if the query names a cohort its normalisation did not resolve (a caller
    that normalised without the project's cohorts)."""
    have = {c.id for c in nq.cohorts}
    for cid in sorted(query_cohort_ids(nq.query)):
        if cid not in have and cid != ALL_USERS:
            raise InvalidQuery(f"cohort {cid} is not resolved for this query", field="cohort")


def query_cohort_ids(q: InsightQuery) -> set[int]:
    """Every cohort the query names, in filters and in a cohort breakdown."""
    out: set[int] = set()
    for props in property_lists(q):
        out |= cohort_ids(props)
    bf = getattr(q, "breakdownFilter", None)
    out |= set(cohort_breakdown(bf) or [])
    out.discard(ALL_USERS)
    return out


def property_lists(q: InsightQuery) -> list[Any]:
    """Every filter list or group of the query (global, series, exclusions, entities)."""
    out: list[Any] = [q.properties]
    if isinstance(q, RetentionQuery):
        rf = q.retentionFilter
        out += [rf.targetEntity.properties, rf.returningEntity.properties]
    else:
        # A PathsQuery has no series (merge of h-paths and h-cohorts).
        out += [node.properties for node in getattr(q, "series", ())]
    if isinstance(q, FunnelsQuery):
        out += [ex.properties for ex in q.funnelsFilter.exclusions]
    return out


def restricted_to_cohort(q: InsightQuery, cohort_id: int) -> InsightQuery:
    """`q` without its breakdown, restricted to the cohort (all users: no restriction): one
    cohort's run of a cohort breakdown."""
    update: dict[str, Any] = {"breakdownFilter": None}
    if cohort_id != ALL_USERS:
        f = PropertyFilter(key="id", value=cohort_id, operator="in", type="cohort")
        props = q.properties
        if isinstance(props, PropertyGroup):
            update["properties"] = PropertyGroup(type="AND", values=[props, f])
        else:
            update["properties"] = [*props, f]
    return q.model_copy(update=update)


def with_cohort_breakdown(nq: NormalisedQuery, run: Callable[[NormalisedQuery], Any]) -> Any:
    """`run(nq)`, or for a cohort breakdown the runs per cohort (query order), each run's
    rows marked with `breakdown_value` = the cohort id and `breakdown_label` = its name.
    Trends and retention: the rows of each cohort follow each other; funnels: one step list
    per cohort (as a property breakdown)."""
    q = nq.query
    ids = cohort_breakdown(getattr(q, "breakdownFilter", None))
    if ids is None:
        return run(nq)
    names = {c.id: c.name for c in nq.cohorts}
    out: list[Any] = []
    for cid in ids:
        rows = run(with_query(nq, restricted_to_cohort(q, cid)))
        label = "All users" if cid == ALL_USERS else names.get(cid, str(cid))
        if isinstance(q, FunnelsQuery):
            for step in rows:
                step["breakdown"] = cid
                step["breakdown_value"] = cid
                step["breakdown_label"] = label
            out.append(rows)
            continue
        for row in rows:
            row["breakdown_value"] = cid
            row["breakdown_label"] = label
            if isinstance(q, TrendsQuery) and isinstance(row.get("filter"), dict):
                row["filter"] = {
                    **row["filter"],
                    "breakdown": ids,
                    "breakdown_type": "cohort",
                }
        out.extend(rows)
    return out
