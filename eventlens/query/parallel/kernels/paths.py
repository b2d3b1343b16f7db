"""Paths kernel: per partition, {(step, source, target): persons, transitions, time} and
{(step, node): persons dropping off there}; merged by addition (docs/adr/0015-paths.md).

All of a person's events live in one person bucket, so a partition's count of distinct persons
per edge is exact and partitions add up. Node names are computed once per distinct URL / screen
name / event name (semantics.paths.Namer: trailing slash, cleaning, grouping); sessions,
collapsing, start / end cuts and step numbers are numpy passes over the (person, ts, uuid)
ordered rows. Funnel paths run the funnels kernel's per-person attempt rules for persons with a
funnel event, as the funnels kernel does. Edge limits and weights apply after the merge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from eventlens.query import deadline
from eventlens.query.dates import to_us
from eventlens.query.model import PathsQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel.frame import Frame, LoadSpec
from eventlens.query.parallel.kernels import Kernel
from eventlens.query.parallel.kernels.common import keys_of
from eventlens.query.parallel.kernels.funnels import _Person, _person_result
from eventlens.query.semantics.funnels import WINDOW_SECONDS
from eventlens.query.semantics.paths import (
    CUSTOM,
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
    edge_rows,
    event_types,
    funnel_bounds,
    merge_counts,
    node_type,
    read_event_names,
    screen_name,
    url_name,
)

Partial = tuple[dict[EdgeKey, EdgeStats], dict[NodeKey, int]]


@dataclass(frozen=True)
class Params:
    nq: NormalisedQuery[PathsQuery]
    spec: LoadSpec
    window_us: int  # the funnel source's conversion window (funnel paths), else 0


def prepare(nq: NormalisedQuery[PathsQuery], earliest_us: int | None) -> Params:
    q = nq.query
    pf = q.pathsFilter
    fp = q.funnelPathsFilter
    keys = keys_of(q.properties)
    types = event_types(pf)
    if PAGEVIEW in types:
        keys.add(("event", URL_KEY))
    if SCREEN in types:
        keys.add(("event", SCREEN_KEY))
    window = 0
    if fp is not None:
        fq = fp.funnelSource
        ff = fq.funnelsFilter
        window = ff.funnelWindowInterval * WINDOW_SECONDS[ff.funnelWindowIntervalUnit] * 10**6
        keys |= keys_of(
            fq.properties,
            *(n.properties for n in fq.series),
            *(x.properties for x in ff.exclusions),
        )
    spec = LoadSpec(
        lo=nq.floor_us if nq.date_from is None else to_us(nq.date_from),
        hi=nq.end_us,
        events=read_event_names(pf, fp is not None),
        props=tuple(sorted(keys)),
        ordered=True,
    )
    return Params(nq, spec, window)


@dataclass
class _Paths:
    """One partition's paths, one row per path node in (person, session, step) order:
    person code, node id into `names`, µs, session index, step - 1; and per session its first
    and last + 1 row (`lo`, `hi`; only sessions that make a path)."""

    person: np.ndarray
    node: np.ndarray
    ts: np.ndarray
    session: np.ndarray
    rank: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    names: list[str]


def _empty(names: list[str]) -> _Paths:
    z = np.zeros(0, np.int64)
    return _Paths(z, z, z, z, z, z, z, names)


def _node_ids(params: Params, frame: Frame) -> tuple[np.ndarray, list[str]]:
    """Per row the node id (-1: no node, or excluded) and the node names."""
    pf = params.nq.query.pathsFilter
    types = event_types(pf)
    namer = Namer(pf)
    excluded = set(pf.excludeEvents)
    names: list[str] = []
    index: dict[str, int] = {}

    def node_id(raw: str | None) -> int:
        if raw is None:
            return -1
        name = namer(raw)
        if name in excluded:
            return -1
        found = index.get(name)
        if found is None:
            found = index[name] = len(names)
            names.append(name)
        return found

    # Custom events through one per-event-name table; pageviews and screens per property value.
    per_code = np.full(len(frame.event_names) + 1, -1, np.int64)
    named: list[tuple[int, str]] = []
    for code, event in enumerate(frame.event_names):
        kind = node_type(event, types)
        if kind is None or event in excluded:
            continue
        if kind == CUSTOM:
            per_code[code] = node_id(event)
        else:
            named.append((code, kind))
    node: np.ndarray = per_code[frame.event]
    for code, kind in named:
        rows = np.flatnonzero(frame.event == code)
        key, raw_name = (URL_KEY, url_name) if kind == PAGEVIEW else (SCREEN_KEY, screen_name)
        column = frame.props[("event", key)]
        # One naming per distinct value (the last entry: the property is missing).
        lut = np.array([node_id(raw_name(v)) for v in column.values] + [-1], np.int64)
        node[rows] = lut[column.codes[rows]]
    return node, names


def _funnel_window(params: Params, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Per person code the inclusive window of path events (lo > hi: not in the group)."""
    fp = params.nq.query.funnelPathsFilter
    assert fp is not None
    fq = fp.funnelSource
    ff = fq.funnelsFilter
    lo_b = np.ones(frame.n_persons, np.int64)
    hi_b = np.zeros(frame.n_persons, np.int64)
    rows = np.flatnonzero(frame.match(fq.properties))
    if rows.size == 0:
        return lo_b, hi_b
    bits = np.zeros(rows.size, np.int64)
    for s, node in enumerate(fq.series):
        bits[frame.node_mask(node.event, node.properties)[rows]] |= 1 << s
    excl = np.zeros(rows.size, np.int64)
    for e, ex in enumerate(ff.exclusions):
        excl[frame.node_mask(ex.event, ex.properties)[rows]] |= 1 << e
    person = frame.person[rows]
    starts = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
    ends = np.r_[starts[1:], rows.size]
    ts_all, bits_all, excl_all = frame.ts[rows].tolist(), bits.tolist(), excl.tolist()
    for count, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        if not any(bits_all[a:b]):
            continue
        if count % 2048 == 0:
            deadline.check()
        p = _Person(ts_all[a:b], bits_all[a:b], excl_all[a:b], [])
        result = _person_result(fq, p, list(range(b - a)), params.window_us)
        if result is None:
            continue  # excluded from the funnel
        bounds = funnel_bounds(fp, [p.ts[k] for k in result[0]], params.window_us)
        if bounds is not None:
            code = int(person[a])
            lo_b[code], hi_b[code] = bounds
    return lo_b, hi_b


def _paths(params: Params, frame: Frame) -> _Paths:
    q = params.nq.query
    pf = q.pathsFilter
    if len(frame) == 0:
        return _empty([])
    node, names = _node_ids(params, frame)
    keep = node >= 0
    if keep.any():
        keep &= frame.match(q.properties)
    if q.funnelPathsFilter is not None and keep.any():
        lo_b, hi_b = _funnel_window(params, frame)
        keep &= (frame.ts >= lo_b[frame.person]) & (frame.ts <= hi_b[frame.person])
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        return _empty(names)
    p, t, v = frame.person[rows], frame.ts[rows], node[rows]
    # Sessions split at > 30 minutes between a person's consecutive path events (before
    # repeats are collapsed, as the reference walks them).
    new = np.r_[True, (p[1:] != p[:-1]) | (t[1:] - t[:-1] > SESSION_GAP_US)]
    first = new | np.r_[True, v[1:] != v[:-1]]  # a repeat of the node before is collapsed
    new, p, t, v = new[first], p[first], t[first], v[first]
    session = np.cumsum(new) - 1
    start_rows = np.flatnonzero(new)
    count = start_rows.size
    lo = start_rows.copy()
    hi = np.r_[start_rows[1:], p.size]
    valid = np.ones(count, bool)
    big = np.iinfo(np.int64).max
    positions = np.arange(p.size)
    if pf.startPoint is not None:
        found = np.full(count, big, np.int64)
        if pf.startPoint in names:
            at = np.flatnonzero(v == names.index(pf.startPoint))
            np.minimum.at(found, session[at], at)
        valid &= found != big
        lo = np.where(valid, found, lo)
    if pf.endPoint is not None:
        found = np.full(count, big, np.int64)
        if pf.endPoint in names:
            at = np.flatnonzero(v == names.index(pf.endPoint))
            at = at[at >= lo[session[at]]]  # the first end at or after the start
            np.minimum.at(found, session[at], at)
        valid &= found != big
        hi = np.where(valid, found + 1, hi)
    limit = pf.stepLimit
    long = (hi - lo) > limit
    if pf.startPoint is not None and pf.endPoint is not None:
        valid &= ~long
    elif pf.endPoint is not None:
        lo = np.where(long, hi - limit, lo)
    else:
        hi = np.where(long, lo + limit, hi)
    s = session
    inside = valid[s] & (positions >= lo[s]) & (positions < hi[s])
    kept = np.flatnonzero(inside)
    # Sessions renumbered over the kept ones; their bounds shifted to the kept rows.
    sessions = np.flatnonzero(valid)
    renumber = np.full(count, -1, np.int64)
    renumber[sessions] = np.arange(sessions.size)
    offset = np.cumsum(np.r_[0, hi[sessions] - lo[sessions]])
    return _Paths(
        person=p[kept],
        node=v[kept],
        ts=t[kept],
        session=renumber[s[kept]],
        rank=kept - lo[s[kept]],
        lo=offset[:-1],
        hi=offset[1:],
        names=names,
    )


def _edge_rows(paths: _Paths) -> np.ndarray:
    """Rows i whose next row is the next node of the same path (the edge i -> i + 1)."""
    if paths.person.size < 2:
        return np.zeros(0, np.int64)
    return np.flatnonzero(paths.session[1:] == paths.session[:-1])


def _distinct_per_key(keys: np.ndarray, person: np.ndarray, size: int) -> np.ndarray:
    """Per key id 0..size-1: how many distinct persons have it."""
    if keys.size == 0:
        return np.zeros(size, np.int64)
    width = int(person.max()) + 1
    pairs = np.unique(keys * width + person)
    return np.bincount(pairs // width, minlength=size)


def compute(params: Params, frame: Frame) -> Partial:
    paths = _paths(params, frame)
    names = paths.names
    edges: dict[EdgeKey, EdgeStats] = {}
    drops: dict[NodeKey, int] = {}
    if paths.person.size == 0:
        return edges, drops
    n = len(names)
    i = _edge_rows(paths)
    if i.size:
        key = ((paths.rank[i] + 1) * n + paths.node[i]) * n + paths.node[i + 1]
        uniq, inverse = np.unique(key, return_inverse=True)
        inverse = inverse.reshape(-1)
        transitions = np.bincount(inverse, minlength=uniq.size)
        time_us = np.zeros(uniq.size, np.int64)
        np.add.at(time_us, inverse, paths.ts[i + 1] - paths.ts[i])
        persons = _distinct_per_key(inverse, paths.person[i], uniq.size)
        for k, code in enumerate(uniq.tolist()):
            step, rest = divmod(code, n * n)
            source, target = divmod(rest, n)
            edges[(step, names[source], names[target])] = EdgeStats(
                int(persons[k]), int(transitions[k]), int(time_us[k])
            )
    last = paths.hi - 1
    dkey = (paths.hi - paths.lo) * n + paths.node[last]
    uniq, inverse = np.unique(dkey, return_inverse=True)
    persons = _distinct_per_key(inverse.reshape(-1), paths.person[last], uniq.size)
    for k, code in enumerate(uniq.tolist()):
        length, node = divmod(code, n)
        drops[(length, names[node])] = int(persons[k])
    return edges, drops


def merge(partials: list[Partial]) -> Partial:
    return merge_counts(partials)


def finish(params: Params, merged: Partial, rerun: Callable[[Params], Partial]) -> list[object]:
    edges, drops = merged
    return list(edge_rows(params.nq.query.pathsFilter, edges, drops))


KERNEL = Kernel("paths", prepare, compute, merge, finish)


# -- the persons behind an edge or a drop-off (actors) -----------------------------------------


def compute_actors(params: Params, frame: Frame) -> list[str]:
    """The person ids (sorted) of one partition that `pathsFilter.pathStartKey` / `pathEndKey`
    / `pathDropoffKey` select: the reference's `path_actors` rule (reference/paths.py), on
    this partition's persons. Raises InvalidQuery when no key is given or one is malformed."""
    codes = paths_actors(params, frame, None)
    if codes.size == 0 or frame.person_ids is None:
        return []
    ids: list[str] = frame.person_ids.take(codes).to_pylist()
    return sorted(ids)


def paths_actors(params: Params, frame: Frame, cell: None) -> np.ndarray:
    """Person codes of this partition behind the query's own path keys (the actors rule of
    eventlens.query.kinds; a path's selector is in its pathsFilter, so `cell` is None)."""
    select = actor_selector(params.nq.query.pathsFilter)
    paths = _paths(params, frame)
    if paths.person.size == 0 or frame.person_ids is None:
        return np.zeros(0, np.int64)
    names = paths.names
    ok = np.ones(frame.n_persons, bool)
    if select.start is not None or select.end is not None:
        i = _edge_rows(paths)
        match = np.ones(i.size, bool)
        if select.start is not None:
            step, name = select.start
            match &= paths.rank[i] + 1 == step
            match &= paths.node[i] == (names.index(name) if name in names else -1)
        if select.end is not None:
            step, name = select.end
            match &= paths.rank[i] + 2 == step
            match &= paths.node[i + 1] == (names.index(name) if name in names else -1)
        has = np.zeros(frame.n_persons, bool)
        has[paths.person[i[match]]] = True
        ok &= has
    if select.dropoff is not None:
        step, name = select.dropoff
        last = paths.hi - 1
        match = (paths.hi - paths.lo == step) & (
            paths.node[last] == (names.index(name) if name in names else -1)
        )
        has = np.zeros(frame.n_persons, bool)
        has[paths.person[last[match]]] = True
        ok &= has
    return np.flatnonzero(ok)


def merge_actors(partials: list[list[str]]) -> list[str]:
    """The partitions' person ids as one sorted list (partitions hold disjoint persons)."""
    return sorted(pid for part in partials for pid in part)


def finish_actors(
    params: Params, merged: list[str], rerun: Callable[[Params], list[str]]
) -> list[str]:
    return merged


# Run like an insight kernel (same prepare and LoadSpec, so the same plan) to list the persons.
ACTORS_KERNEL = Kernel("paths_actors", prepare, compute_actors, merge_actors, finish_actors)
