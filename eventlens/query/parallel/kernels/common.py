"""Helpers shared by the kernels: event-name pushdown, breakdown labels, range buckets."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from eventlens.query.dates import Buckets
from eventlens.query.model import PropertyFilter, PropertyGroup
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel.frame import Frame, PropKey, probe_event, props_keys
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


def range_buckets(nq: NormalisedQuery, earliest_us: int | None) -> Buckets:
    """The query's buckets (`date_from = all` starts at the snapshot's earliest event)."""
    return nq.buckets(earliest_us)


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
