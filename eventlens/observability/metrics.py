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
consumer_restarts = Counter(
    "eventlens_ingest_consumer_restarts_total",
    "Times the supervisor restarted a dead ingest consumer process.",
    registry=REGISTRY,
)
ingest_quarantined = Counter(
    "eventlens_ingest_quarantined_records_total",
    "Ingest log records the consumer could not apply and moved to dead letters (poison records).",
    registry=REGISTRY,
)

# --- query API (owner: query) ---
query_seconds = Histogram(
    "eventlens_query_seconds",
    "Insight query latency (parse to result, excluding HTTP), by engine, kind and outcome.",
    ["engine", "kind", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
query_timeouts = Counter(
    "eventlens_query_timeouts_total",
    "Insight queries that passed their deadline (answered 504).",
    registry=REGISTRY,
)
query_runaway = Gauge(
    "eventlens_query_runaway",
    "Queries past their deadline whose engine thread has not returned yet (holds a pool slot).",
    registry=REGISTRY,
)
resident_bytes = Gauge(
    "eventlens_query_resident_bytes",
    "Bytes of decoded event columns kept in memory by the parallel engine (resident buckets).",
    registry=REGISTRY,
)
resident_lookups = Counter(
    "eventlens_query_resident_lookups_total",
    "Resident bucket lookups by sub-tasks: hit, extended (new files merged in) or miss (built).",
    ["outcome"],
    registry=REGISTRY,
)
resident_build_seconds = Histogram(
    "eventlens_query_resident_build_seconds",
    "Seconds to read and sort one person bucket into memory (a resident bucket miss).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)

# --- storage / persons (owner: storage) ---
ingest_duplicates = Counter(
    "eventlens_ingest_duplicates_total",
    "Events dropped by ingest or import because their (project, uuid) was already stored.",
    registry=REGISTRY,
)
person_merge_pending = Gauge(
    "eventlens_person_merge_pending",
    "Person merges whose events are not yet rewritten to the surviving person, by project.",
    ["project"],
    registry=REGISTRY,
)
person_merge_lag_seconds = Gauge(
    "eventlens_person_merge_lag_seconds",
    "Age of the oldest person merge not yet rewritten in the event table, by project.",
    ["project"],
    registry=REGISTRY,
)

# --- shadow mode (owner: shadow) ---
shadow_queries = Counter(
    "eventlens_shadow_queries_total",
    "Shadowed queries by outcome (match, mismatch, nondeterministic, candidate_error,"
    " candidate_timeout, shed, primary_error).",
    ["outcome"],
    registry=REGISTRY,
)
shadow_engine_seconds = Histogram(
    "eventlens_shadow_engine_seconds",
    "Engine execution time of shadowed queries, by role (primary, candidate) and engine.",
    ["role", "engine"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
shadow_pending = Gauge(
    "eventlens_shadow_pending",
    "Candidate runs queued or running in the shadow pool (bounded by workers + queue).",
    registry=REGISTRY,
)

logins = Counter(
    "eventlens_logins_total",
    "Dashboard login attempts by outcome (success, failure, throttled).",
    ["outcome"],
    registry=REGISTRY,
)
