"""Cohort membership per sub-task: a boolean mask over the frame's person codes per cohort,
computed before the kernel runs (docs/semantics.md "Cohorts", ADR 0017).

Persons never cross person buckets and a sub-task holds whole buckets, so every event a
behavioural condition counts, and the latest event whose person properties a person condition
reads, is in the sub-task's own bucket files (all of them, not only those the query's time range
keeps). One extra read of those rows (resident columns when the buckets are resident) per
sub-task; the rules are those of eventlens.query.semantics.cohorts, applied per distinct
property value and counted with numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlens.query.cohorts import Group, Performed, PersonProperty, ResolvedCohort
from eventlens.query.model import PropertyFilter
from eventlens.query.parallel import resident_cache
from eventlens.query.parallel.frame import Frame, LoadSpec, PropKey, Source, load, probe_event
from eventlens.query.parallel.resident import concat_frames
from eventlens.query.semantics.cohorts import group_matches
from eventlens.query.semantics.filters import filter_matches


@dataclass(frozen=True)
class Membership:
    """Per cohort: a mask over `person_ids` (the membership scan's persons), and the answer for
    a person the scan did not read (no event a condition looks at: every count is zero)."""

    person_ids: pa.Array | None
    masks: dict[int, np.ndarray]
    absent: dict[int, bool]
    static: dict[int, pa.Array]


def _walk(g: Group) -> list[Performed | PersonProperty]:
    out: list[Performed | PersonProperty] = []
    for v in g.values:
        out.extend(_walk(v) if isinstance(v, Group) else [v])
    return out


def scan_spec(cohorts: Sequence[ResolvedCohort]) -> LoadSpec | None:
    """What the membership scan reads: every row of the buckets (ordered, so a person's last
    row is their latest event) if a person condition needs the latest event, else only the
    behavioural conditions' events. None if only static cohorts are involved."""
    conds = [c for co in cohorts if co.group is not None for c in _walk(co.group)]
    if not conds:
        return None
    props: set[PropKey] = {("person", c.filter.key) for c in conds if isinstance(c, PersonProperty)}
    names = {c.event for c in conds if isinstance(c, Performed)}
    return LoadSpec(
        lo=None,
        hi=None,
        events=None if props else frozenset(names),
        props=tuple(sorted(props)),
        ordered=bool(props),
    )


def _scan(source: Source, spec: LoadSpec, resident: bool) -> Frame:
    if resident and source.buckets:
        return concat_frames([resident_cache.CACHE.bucket(p).frame(spec) for p in source.buckets])
    if source.table is not None:
        return load(Source(table=source.table), spec)
    every = tuple(path for paths in source.buckets for path in paths)
    return load(Source(paths=every or source.paths), spec)


def _person_test(f: PropertyFilter) -> Callable[[bool, Any], bool]:
    def test(is_set: bool, value: Any) -> bool:
        return filter_matches(f, probe_event({f.key: value} if is_set else {}))

    return test


def _mask(g: Group, m: Frame, last: np.ndarray) -> np.ndarray:
    """The group per person code of `m` (persons without rows: False)."""
    n = m.n_persons
    results = []
    for v in g.values:
        if isinstance(v, Group):
            ok = _mask(v, m, last)
        elif isinstance(v, Performed):
            rows = m.event_mask(v.event) & (m.ts >= v.lo_us) & (m.ts < v.hi_us)
            counts = np.bincount(m.person[rows], minlength=n)[:n]
            if v.op == "gte":
                ok = counts >= v.n
            elif v.op == "lte":
                ok = counts <= v.n
            else:
                ok = counts == v.n
            ok = ok != v.negation
        else:
            per_row = m.props[("person", v.filter.key)].lookup(_person_test(v.filter), bool)
            ok = np.zeros(n, dtype=bool)
            ok[m.person[last]] = per_row[last]
            ok = ok != v.negation
        results.append(ok)
    if not results:
        return np.ones(n, dtype=bool)
    out = results[0].copy()
    for r in results[1:]:
        out = (out & r) if g.type == "AND" else (out | r)
    return out


def membership(cohorts: Sequence[ResolvedCohort], source: Source, resident: bool) -> Membership:
    """Who of the sub-task's persons is in each cohort."""
    static = {
        c.id: pa.array(sorted(c.members), pa.string()) for c in cohorts if c.members is not None
    }
    spec = scan_spec(cohorts)
    if spec is None:
        return Membership(None, {}, {}, static)
    m = _scan(source, spec, resident)
    if len(m):
        last = np.flatnonzero(np.r_[m.person[1:] != m.person[:-1], True])
    else:
        last = np.zeros(0, np.int64)
    masks: dict[int, np.ndarray] = {}
    absent: dict[int, bool] = {}
    for c in cohorts:
        if c.group is None:
            continue
        masks[c.id] = _mask(c.group, m, last) if m.n_persons else np.zeros(0, dtype=bool)
        absent[c.id] = group_matches(c.group, probe_event({}), lambda _: 0)
    ids = m.person_ids if m.person_ids is not None else pa.array([], pa.string())
    return Membership(ids, masks, absent, static)


def _same(a: pa.Array, b: pa.Array | None) -> bool:
    return b is not None and (a is b or (len(a) == len(b) and a.equals(b)))


def attach(frame: Frame, found: Membership) -> None:
    """Set `frame.cohorts` (and its history's) from a sub-task's membership."""
    for f in (frame, frame.history):
        if f is None:
            continue
        out: dict[int, np.ndarray] = {}
        ids = f.person_ids if f.person_ids is not None else pa.array([], pa.string())
        for cid, members in found.static.items():
            out[cid] = pc.is_in(ids, value_set=members).to_numpy(zero_copy_only=False)
        if found.masks and _same(ids, found.person_ids):
            # Resident buckets: the scan and the frame share one person dictionary.
            out.update(found.masks)
        elif found.masks:
            assert found.person_ids is not None
            index = pc.index_in(ids, value_set=found.person_ids)
            valid = index.is_valid().to_numpy(zero_copy_only=False)
            codes = pc.fill_null(index, 0).to_numpy(zero_copy_only=False).astype(np.int64)
            for cid, mask in found.masks.items():
                per = np.full(len(ids), found.absent[cid], dtype=bool)
                if mask.size:
                    per[valid] = mask[codes[valid]]
                out[cid] = per
        f.cohorts = out
