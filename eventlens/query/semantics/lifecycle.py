"""Lifecycle rules both engines share: the statuses, the extended buckets, the output rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eventlens.query.dates import Buckets, make_buckets, shift
from eventlens.query.model import EventsNode
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.semantics.buckets import axis

STATUSES = ("new", "returning", "resurrecting", "dormant")


def extended_buckets(nq: NormalisedQuery, buckets: Buckets) -> Buckets:
    """The range's buckets with one more interval in front: the first bucket of the range is
    classified against it."""
    return make_buckets(
        shift(buckets.starts[0], nq.interval, -1), buckets.end_us, nq.interval, nq.week_start
    )


def lifecycle_rows(
    node: EventsNode, buckets: Buckets, data: Mapping[str, Sequence[int]]
) -> list[dict[str, Any]]:
    """The four output rows (STATUSES order) from per-status counts per bucket."""
    label = node.custom_name or node.event or "All events"
    out = []
    for status in STATUSES:
        counts = [int(x) for x in data[status]]
        out.append(
            {
                # PostHog's lifecycle runner returns this "legacy response compatibility object".
                "action": {
                    "id": node.event,
                    "name": node.event or "All events",
                    "type": "events",
                    "order": 0,
                    "math": "total",
                },
                "label": f"{label} - {status}",
                "status": status,
                **axis(buckets),
                "data": counts,
                "count": sum(counts),
            }
        )
    return out
