"""Prometheus metrics of the whole process, in one registry, exposed at `/metrics`.

Every metric is listed in docs/operations.md (a test checks that). Define metrics here, not
in the components, so that the list stays in one place.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

REGISTRY = CollectorRegistry(auto_describe=True)

# Bucket bounds of the histograms an SLO reads (an SLO's latency threshold must be one of them:
# eventlens/observability/slos.yaml; tests/observability check it).
CAPTURE_ACK_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FRESHNESS_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

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
    buckets=CAPTURE_ACK_BUCKETS,
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
consumer_lag_seconds = Gauge(
    "eventlens_ingest_lag_seconds",
    "Age of the oldest acknowledged event not yet committed to its event table (0 when none).",
    registry=REGISTRY,
)


def le_label(bound: float) -> str:
    """A bucket bound as prometheus_client writes it in the `le` label ("0.25", "10.0")."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


class RemoteHistogram(Collector):
    """A histogram observed in another process (the ingest consumer) and added here as counts.

    The consumer keeps cumulative per-bucket counts in its status file; the supervisor adds
    what each consumer process counted since its last look (`add`), so the series stays a
    monotonic histogram across consumer restarts.
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name, self.documentation = name, documentation
        self.buckets = tuple(buckets)
        self._counts = [0] * (len(self.buckets) + 1)  # per bucket, the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def bucket_index(self, value: float) -> int:
        """Index in the per-bucket counts of an observation of `value` (le semantics)."""
        return bisect.bisect_left(self.buckets, value)

    def add(self, counts: Sequence[int], total: float) -> None:
        """Add per-bucket (not cumulative) counts and their sum of observed values."""
        if len(counts) != len(self._counts):
            raise ValueError(
                f"{self.name}: {len(counts)} bucket counts, {len(self._counts)} expected"
            )
        with self._lock:
            for i, n in enumerate(counts):
                self._counts[i] += max(0, int(n))
            self._sum += max(0.0, total)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, n in zip([*map(le_label, self.buckets), "+Inf"], counts, strict=True):
            running += n
            cumulative.append((bound, float(running)))
        yield HistogramMetricFamily(
            self.name, self.documentation, buckets=cumulative, sum_value=total
        )


ingest_freshness = RemoteHistogram(
    "eventlens_ingest_freshness_seconds",
    "Seconds from an event's acknowledgement to its commit in the event table (queryable),"
    " one observation per event.",
    FRESHNESS_BUCKETS,
)
REGISTRY.register(ingest_freshness)
ingest_quarantined = Counter(
    "eventlens_ingest_quarantined_records_total",
    "Ingest log records the consumer could not apply and moved to dead letters (poison records).",
    registry=REGISTRY,
)

# --- query API (owner: query) ---
query_seconds = Histogram(
    "eventlens_query_seconds",
    "Insight query latency (parse to result, excluding HTTP), one observation per served "
    "request, by engine, kind, outcome and cache (how the result cache served it: hit, miss, "
    "incremental, coalesced, stale; off without a cache).",
    ["engine", "kind", "outcome", "cache"],
    buckets=QUERY_BUCKETS,
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
# Per worker of a distributed executor (the Ray bucket owners, deploy-cluster.md).
worker_subtasks = Counter(
    "eventlens_query_worker_subtasks_total",
    "Sub-tasks answered by each bucket-owner worker (Ray executor).",
    ["worker"],
    registry=REGISTRY,
)
worker_retries = Counter(
    "eventlens_query_worker_retries_total",
    "Sub-tasks re-issued away from a worker: lost (its process or node died), failed (an error), "
    "straggler (far slower than its peers; the first answer wins).",
    ["worker", "reason"],
    registry=REGISTRY,
)
worker_resident_bytes = Gauge(
    "eventlens_query_worker_resident_bytes",
    "Bytes of resident buckets held by each bucket-owner worker, as of its last answer.",
    ["worker"],
    registry=REGISTRY,
)
workers_lost = Counter(
    "eventlens_query_workers_lost_total",
    "Bucket-owner workers found dead; their buckets moved to the next owners.",
    registry=REGISTRY,
)

# --- result cache (owner: cache) ---
query_cache_requests = Counter(
    "eventlens_query_cache_requests_total",
    "Queries by how the result cache answered: hit (at the current data version, nothing "
    "computed), miss (computed from scratch), incremental (computed reusing cached sub-task "
    "partials), coalesced (shared another request's computation), stale (an answer of an "
    "older data version served).",
    ["result"],
    registry=REGISTRY,
)
query_cache_bytes = Gauge(
    "eventlens_query_cache_bytes",
    "Bytes held by the in-process result cache: store=answers (whole answers) or partials "
    "(per-sub-task partial results).",
    ["store"],
    registry=REGISTRY,
)
query_cache_subtasks = Counter(
    "eventlens_query_cache_subtasks_total",
    "Sub-tasks of cache-backed computations: reused (partial from the cache) or computed.",
    ["outcome"],
    registry=REGISTRY,
)
query_cache_refreshes = Counter(
    "eventlens_query_cache_refreshes_total",
    "Background refreshes (async modes): started, deduplicated (one already running), shed "
    "(queue full), failed (the last good answer kept).",
    ["outcome"],
    registry=REGISTRY,
)
query_cache_backend_errors = Counter(
    "eventlens_query_cache_backend_errors_total",
    "Failed calls to the cache backend (Redis down or slow): the query computed instead.",
    registry=REGISTRY,
)
query_engine_cpu_seconds = Counter(
    "eventlens_query_engine_cpu_seconds_total",
    "Engine CPU seconds (process time while computing) by query kind.",
    ["kind"],
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
