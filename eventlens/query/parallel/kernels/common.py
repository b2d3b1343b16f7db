"""Helpers shared by the kernels: event-name pushdown, breakdown labels, range buckets."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from eventlens.query.dates import Buckets
from eventlens.query.model import PropertyFilter, PropertyGroup
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel.frame import Frame, PropKey, probe_event, props_keys
from eventlens.query.semantics.breakdowns import combo_label
from eventlens.query.semantics.filters import breakdown_value

Properties = list[PropertyFilter | PropertyGroup] | PropertyGroup


def event_names(names: Iterable[str | None]) -> frozenset[str] | None:
    """Names to push down to the scan; None (read every event) if any node means all events."""
    out: set[str] = set()
    for name in names:
        if name is None:
            return None
        out.add(name)
    return frozenset(out)


def keys_of(*props: Properties) -> set[PropKey]:
    out: set[PropKey] = set()
    for p in props:
        out |= props_keys(p)
    return out


def person_set(codes: np.ndarray, n_persons: int) -> np.ndarray:
    """The distinct person codes among `codes`, ascending (a mark array: O(rows + persons),
    cheaper than a sort-based unique on a partition's rows)."""
    mark = np.zeros(n_persons, dtype=bool)
    mark[codes] = True
    out: np.ndarray = np.flatnonzero(mark)
    return out


def range_buckets(nq: NormalisedQuery, earliest_us: int | None) -> Buckets:
    """The query's buckets (`date_from = all` starts at the snapshot's earliest event)."""
    return nq.buckets(earliest_us)


def trends_labels(
    frame: Frame, keys: list[tuple[str, str]], multiple: bool
) -> tuple[np.ndarray, list[str]]:
    """Per-row label id and the label names, sorted (the reference's event_breakdown: per
    key strings as they are, other JSON as text, null / "" as the null label; for multiple
    breakdowns the label of each combination that occurs)."""
    if not multiple:
        return breakdown_labels(frame, *keys[0])
    parts = [breakdown_labels(frame, key, kind) for key, kind in keys]
    sizes = [len(names) for _, names in parts]
    flat = (
        np.ravel_multi_index(tuple(codes for codes, _ in parts), sizes)
        if len(frame)
        else (np.zeros(0, np.int64))
    )
    seen, inverse = np.unique(flat, return_inverse=True)
    combos = np.unravel_index(seen, sizes)
    names = [
        combo_label([parts[k][1][int(combos[k][i])] for k in range(len(parts))])
        for i in range(seen.size)
    ]
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), np.int64)
    rank[order] = np.arange(len(names))
    return rank[inverse.reshape(-1)] if inverse.size else inverse.astype(np.int64), [
        names[i] for i in order
    ]


def breakdown_labels(frame: Frame, key: str, kind: str) -> tuple[np.ndarray, list[str]]:
    """Per-row label id and the label names (the reference's breakdown_value per distinct
    value: strings as they are, other JSON as text, null / "" as the null label)."""
    column = frame.props[(kind, key)]
    labels = [
        breakdown_value(probe_event({key: v} if v is not None else {}), key, kind)
        for v in column.values
    ]
    labels.append(breakdown_value(probe_event({}), key, kind))
    names = sorted(set(labels))
    index = {n: i for i, n in enumerate(names)}
    lut = np.array([index[label] for label in labels], dtype=np.int64)
    return lut[column.codes], names
