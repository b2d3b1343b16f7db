"""The reference engine: the oracle every other engine must agree with (insights.md).

Single-threaded plain Python, per person and per event; one kernel module per insight kind, all
with the signature `run_<kind>(query: NormalisedQuery[<Kind>Query], events) -> JSON-able`, named
in the one registry of kinds (eventlens.query.kinds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from eventlens.query import deadline
from eventlens.query.engines import InsightResult
from eventlens.query.kinds import InsightKind, kind_of, load
from eventlens.query.model import FunnelsQuery, InsightQuery, PathsQuery, RetentionQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.reference.events import load_events
from eventlens.query.semantics.cohorts import check_resolved, with_cohort_breakdown, with_members
from eventlens.query.semantics.compare import with_compare
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.paths import read_event_names
from eventlens.query.source import EventSource
from eventlens.storage.event_table import Snapshot

__all__ = ["ReferenceEngine", "Rule", "event_names", "rule_for"]

# A kind's rule: `run_<kind>(nq, events)` in reference/<kind>.py, named in eventlens.query.kinds.
Rule = Callable[[NormalisedQuery[Any], Sequence[Event]], InsightResult]


def rule_for(kind: InsightKind[Any]) -> Rule:
    """The reference engine's function for `kind`."""
    rule = load(kind.reference)
    if not callable(rule):
        raise TypeError(f"{kind.reference} is not a function")
    return cast(Rule, rule)


class ReferenceEngine:
    """Engine "reference": reads every row of the snapshot into Python objects, then runs the
    kernel of the query's kind. Slow by design; obviously correct is the point."""

    name = "reference"

    def run(self, query: NormalisedQuery, snapshot: EventSource) -> InsightResult:
        """`snapshot`: an eventlens.storage Snapshot, a pyarrow Table or a list of row dicts
        with the event table's columns (eventlens.query.source).

        The one shortcut: rows of events no part of the query names are dropped before they
        become Python objects (a strict funnel, or a node for all events, keeps every row);
        `date_from = all` is first resolved against the earliest row of the whole snapshot."""
        query, source = _read(query, snapshot)
        return self.run_events(query, load_events(source))

    def actors(self, query: NormalisedQuery, snapshot: EventSource, cell: Any) -> list[str]:
        """Sorted person ids behind `cell` (eventlens.query.semantics.actors) of `query`'s
        answer, by the kind's actors rule (`<kind>_actors` in reference/<kind>.py). `query` is
        the period's own query (compare "previous": the previous period's)."""
        query, source = _read(query, snapshot)
        check_resolved(query)
        events = _with_cohorts(query, load_events(source))
        deadline.check()
        kind = kind_of(query)
        rule = load(kind.reference_actors)
        if not callable(rule):
            raise TypeError(f"{kind.reference_actors} is not a function")
        return sorted(rule(kind.narrow(query), events, cell))

    def run_events(self, query: NormalisedQuery, events: Sequence[Event]) -> InsightResult:
        """Run the rule of the query's kind over `events` (sorted by time, then uuid)."""
        deadline.check()
        kind = kind_of(query)
        rule = rule_for(kind)
        check_resolved(query)
        events = _with_cohorts(query, events)

        def run(nq: NormalisedQuery) -> Any:
            return with_cohort_breakdown(nq, lambda one: rule(kind.narrow(one), events))

        return with_compare(query, run)


def _with_cohorts(query: NormalisedQuery, events: Sequence[Event]) -> Sequence[Event]:
    """`events` each carrying its person's cohort ids (what a cohort filter reads), then only
    those of the names the query reads: `_read` keeps every name for a query with cohorts,
    since membership looks at a person's events of any name."""
    if not query.cohorts:
        return events
    events = with_members(query.cohorts, events)
    names = event_names(query.query)
    return events if names is None else [e for e in events if e.event in names]


def _read(query: NormalisedQuery, snapshot: EventSource) -> tuple[NormalisedQuery, Any]:
    """(query with `date_from = all` resolved, the rows it can look at)."""
    source = snapshot.read() if isinstance(snapshot, Snapshot) else snapshot
    if isinstance(source, pa.Table) and source.num_rows:
        if query.date_from is None:
            earliest = pc.min(source.column("timestamp").cast(pa.int64())).as_py()
            query = replace(query, date_from=query.all_start(earliest))
        names = event_names(query.query)
        # A cohort looks at each person's events of any name (semantics/cohorts.py).
        if names is not None and not query.cohorts:
            source = source.filter(pc.is_in(source.column("event"), pa.array(sorted(names))))
    return query, source


def event_names(query: InsightQuery) -> set[str] | None:
    """The event names the query can look at, or None if it may look at any event."""
    if isinstance(query, RetentionQuery):
        ids = {query.retentionFilter.targetEntity.id, query.retentionFilter.returningEntity.id}
        return None if None in ids else {i for i in ids if i is not None}
    if isinstance(query, PathsQuery):
        names = read_event_names(query.pathsFilter, query.funnelPathsFilter is not None)
        return None if names is None else set(names)
    nodes: list[str | None] = [node.event for node in query.series]
    if isinstance(query, FunnelsQuery):
        if query.funnelsFilter.funnelOrderType == "strict":
            return None  # the next event of any name can break a strict attempt
        nodes += [ex.event for ex in query.funnelsFilter.exclusions]
    if any(name is None for name in nodes):
        return None
    return {name for name in nodes if name is not None}
