"""Prometheus metrics of the whole process, in one registry, exposed at `/metrics`.

Every metric is listed in docs/operations.md (a test checks that). Define metrics here, not
in the components, so that the list stays in one place.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

capture_requests = Counter(
    "eventlens_capture_requests_total",
    "Capture HTTP requests by endpoint family and status code.",
    ["family", "status"],
    registry=REGISTRY,
)
capture_events = Counter(
    "eventlens_capture_events_total",
    "Events seen by capture, by outcome (accepted, rejected).",
    ["outcome"],
    registry=REGISTRY,
)
ingest_fsync_seconds = Histogram(
    "eventlens_ingest_fsync_seconds",
    "Time of one group-commit write+fsync of the ingest log.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
    registry=REGISTRY,
)
ingest_group_size = Histogram(
    "eventlens_ingest_group_commit_requests",
    "Requests made durable by one fsync.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)
ingest_ack_seconds = Histogram(
    "eventlens_capture_ack_seconds",
    "Capture request latency from body received to durable acknowledgement.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
    registry=REGISTRY,
)
consumer_lag_bytes = Gauge(
    "eventlens_ingest_lag_bytes",
    "Bytes of the ingest log not yet committed to the event tables.",
    registry=REGISTRY,
)
