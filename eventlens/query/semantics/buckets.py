"""Range buckets and quantiles shared by the reference kernels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventlens.query.dates import Buckets, day_label, human_label
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.semantics.events import Event


def range_buckets(nq: NormalisedQuery, events: Sequence[Event]) -> Buckets:
    """The query's buckets; `date_from = all` starts at the snapshot's earliest event."""
    earliest = events[0].ts if events else None
    return nq.buckets(earliest)


def axis(buckets: Buckets) -> dict[str, Any]:
    """`days` (bucket starts as local dates, or local ISO with offset for hours) and `labels`."""
    return {
        "days": [day_label(s, buckets.interval) for s in buckets.starts],
        "labels": [human_label(s, buckets.interval) for s in buckets.starts],
    }


def quantile(values: Sequence[float], q: float) -> float:
    """Exact quantile with linear interpolation between closest ranks (numpy's default);
    0 for no values (insights.md: an empty bucket gives 0)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
