"""Paths, per person (docs/semantics.md "Paths").

Each person's path events (the selected event types, in range, filtered, inside the funnel
window for funnel paths) are named, the excluded ones dropped, split into sessions at 30
minutes of inactivity, consecutive repeats collapsed, and each session cut by start point, end
point and step limit (semantics.paths.cut_session). An edge's value is the number of distinct
persons who made that transition at that step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from eventlens.query import deadline
from eventlens.query.dates import to_us
from eventlens.query.model import PathsQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.reference.events import by_person
from eventlens.query.reference.funnels import _person_result
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import properties_match
from eventlens.query.semantics.funnels import WINDOW_SECONDS
from eventlens.query.semantics.paths import (
    PAGEVIEW,
    SCREEN,
    SCREEN_KEY,
    SESSION_GAP_US,
    URL_KEY,
    EdgeKey,
    EdgeStats,
    Namer,
    NodeKey,
    actor_selector,
    cut_session,
    edge_rows,
    event_types,
    funnel_bounds,
    node_type,
    screen_name,
    url_name,
)

Path = list[tuple[int, str]]  # (µs of the node's first event, node name)


def _funnel_windows(nq: NormalisedQuery[PathsQuery], events: Sequence[Event]) -> dict[str, Any]:
    """Per person in the selected funnel group: the inclusive window of their path events."""
    fp = nq.query.funnelPathsFilter
    assert fp is not None
    fq = fp.funnelSource
    ff = fq.funnelsFilter
    window = ff.funnelWindowInterval * WINDOW_SECONDS[ff.funnelWindowIntervalUnit] * 1_000_000
    lo = nq.floor_us if nq.date_from is None else to_us(nq.date_from)
    in_range = [e for e in events if lo <= e.ts < nq.end_us and properties_match(fq.properties, e)]
    out: dict[str, Any] = {}
    for person, evs in by_person(in_range).items():
        result = _person_result(fq, evs, window)
        if result is None:
            continue  # excluded from the funnel
        bounds = funnel_bounds(fp, [e.ts for e in result.steps], window)
        if bounds is not None:
            out[person] = bounds
    return out


def person_paths(nq: NormalisedQuery[PathsQuery], events: Sequence[Event]) -> dict[str, list[Path]]:
    """Every person's paths (one per session that makes one), persons in first-event order."""
    q = nq.query
    pf = q.pathsFilter
    types = event_types(pf)
    namer = Namer(pf)
    excluded = set(pf.excludeEvents)
    lo = nq.floor_us if nq.date_from is None else to_us(nq.date_from)
    windows = _funnel_windows(nq, events) if q.funnelPathsFilter is not None else None
    nodes: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for e in events:
        if not lo <= e.ts < nq.end_us:
            continue
        kind = node_type(e.event, types)
        if kind is None or not properties_match(q.properties, e):
            continue
        if kind == PAGEVIEW:
            raw = url_name(e.properties.get(URL_KEY))
        elif kind == SCREEN:
            raw = screen_name(e.properties.get(SCREEN_KEY))
        else:
            raw = e.event
        if raw is None:
            continue  # a pageview without a URL (a screen without a name) is no node
        if windows is not None:
            bounds = windows.get(e.person_id)
            if bounds is None or not bounds[0] <= e.ts <= bounds[1]:
                continue
        name = namer(raw)
        if e.event in excluded or name in excluded:
            continue  # removed before sessions are split and repeats collapsed
        nodes[e.person_id].append((e.ts, name))
    return {person: list(_sessions(items, nq)) for person, items in nodes.items()}


def _sessions(items: list[tuple[int, str]], nq: NormalisedQuery[PathsQuery]) -> Iterator[Path]:
    pf = nq.query.pathsFilter
    sessions: list[Path] = []
    current: Path = []
    previous = 0
    for ts, name in items:
        if current and ts - previous > SESSION_GAP_US:
            sessions.append(current)
            current = []
        if not current or current[-1][1] != name:
            current.append((ts, name))  # a repeat of the node before is collapsed into it
        previous = ts
    if current:
        sessions.append(current)
    for session in sessions:
        cut = cut_session([name for _, name in session], pf)
        if cut is not None:
            yield session[cut[0] : cut[1]]


def _counts(
    paths: dict[str, list[Path]],
) -> tuple[dict[EdgeKey, EdgeStats], dict[NodeKey, int]]:
    edges: dict[EdgeKey, EdgeStats] = defaultdict(EdgeStats)
    drops: dict[NodeKey, int] = defaultdict(int)
    for person_paths_ in paths.values():
        deadline.check()
        seen_edges: set[EdgeKey] = set()
        seen_drops: set[NodeKey] = set()
        for path in person_paths_:
            for k in range(len(path) - 1):
                key = (k + 1, path[k][1], path[k + 1][1])
                stats = edges[key]
                stats.transitions += 1
                stats.time_us += path[k + 1][0] - path[k][0]
                seen_edges.add(key)
            seen_drops.add((len(path), path[-1][1]))
        for key in seen_edges:
            edges[key].persons += 1
        for node in seen_drops:
            drops[node] += 1
    return edges, drops


def run_paths(nq: NormalisedQuery[PathsQuery], events: Sequence[Event]) -> list[dict[str, Any]]:
    """The paths edges (semantics.paths.edge_rows): value = unique persons per transition."""
    edges, drops = _counts(person_paths(nq, events))
    return edge_rows(nq.query.pathsFilter, edges, drops)


def paths_actors(nq: NormalisedQuery[PathsQuery], events: Sequence[Event], cell: None) -> list[str]:
    """`path_actors` in the form of the actors rules (eventlens.query.kinds): a path's
    selector is in its own pathsFilter, so `cell` is None."""
    return path_actors(nq, events)


def path_actors(nq: NormalisedQuery[PathsQuery], events: Sequence[Event]) -> list[str]:
    """The person ids (sorted) behind an edge or a drop-off, PostHog's meaning of the query's
    `pathsFilter.pathStartKey` / `pathEndKey` / `pathDropoffKey` (node keys like "2_/pricing"):
    persons with a transition from the start key node (and/or into the end key node) in one of
    their paths; persons with a path that ends at the drop-off key node. With several keys a
    person must satisfy each. Edge limits and weights do not apply (they only trim the chart).
    Raises InvalidQuery (field pathsFilter.pathStartKey ...) when no key is given or one is
    malformed."""
    select = actor_selector(nq.query.pathsFilter)
    out = []
    for person, paths in person_paths(nq, events).items():
        edge_ok = select.start is None and select.end is None
        drop_ok = select.dropoff is None
        for path in paths:
            if not edge_ok:
                edge_ok = any(
                    select.edge_matches(k + 1, path[k][1], path[k + 1][1])
                    for k in range(len(path) - 1)
                )
            if not drop_ok:
                drop_ok = (len(path), path[-1][1]) == select.dropoff
        if edge_ok and drop_ok:
            out.append(person)
    return sorted(out)
