"""The ingest-freshness SLI's histogram: each applied event lands in its ack-to-commit bucket,
and the server side adds each consumer process's counts once (across restarts)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from eventlens.capture.model import CapturedEvent, encode_log_record
from eventlens.config import Settings
from eventlens.ingest.consumer import Consumer, read_status
from eventlens.ingest.log import IngestLog
from eventlens.ingest.supervisor import ConsumerSupervisor
from eventlens.observability import metrics


def _events(n: int) -> list[CapturedEvent]:
    now = int(time.time() * 1e6)
    return [CapturedEvent(str(uuid.uuid4()), "view", f"u{i}", now, {}) for i in range(n)]


def _bucket_total() -> float:
    (family,) = list(metrics.ingest_freshness.collect())
    return next(s.value for s in family.samples if s.name.endswith("_count"))


def test_consumer_counts_each_event_in_its_freshness_bucket(tmp_path: Path) -> None:
    settings = Settings().with_data_dir(tmp_path / "data")
    log = IngestLog(settings.log_dir, fsync=False)
    log.start()
    now = time.time()
    # One record acknowledged just now (fresh), one 100 s ago (a backlog that waited).
    log.append_blocking(encode_log_record(1, int(now * 1e6), _events(3), []))
    log.append_blocking(encode_log_record(1, int((now - 100) * 1e6), _events(2), []))
    consumer = Consumer(settings)
    try:
        assert consumer.step() == 2
    finally:
        consumer.close()
        log.close()
    status = read_status(settings)
    assert status is not None
    counts = status["freshness"]["counts"]
    bounds = metrics.FRESHNESS_BUCKETS
    assert sum(counts) == 5
    assert sum(counts[: bounds.index(10.0) + 1]) == 3  # within the SLO's 10 s
    assert counts[bounds.index(300.0)] == 2  # 60 s < 100 s <= 300 s
    assert 200 <= status["freshness"]["sum"] < 260

    supervisor = ConsumerSupervisor(settings)
    before = _bucket_total()
    supervisor._update_lag()
    supervisor._update_lag()  # the same status again adds nothing
    assert _bucket_total() - before == 5
    assert metrics.REGISTRY.get_sample_value("eventlens_ingest_lag_seconds") == 0.0


def test_lag_seconds_sees_events_behind_a_stale_status(tmp_path: Path) -> None:
    # A stuck consumer writes no status: the lag must come from the log, not from its last word.
    settings = Settings().with_data_dir(tmp_path / "data")
    log = IngestLog(settings.log_dir, fsync=False)
    log.start()
    consumer = Consumer(settings)
    consumer.write_status()  # caught up: lag 0
    consumer.close()
    log.append_blocking(encode_log_record(1, int((time.time() - 42) * 1e6), _events(1), []))
    log.close()
    supervisor = ConsumerSupervisor(settings)
    supervisor._update_lag()
    assert 41 <= (metrics.REGISTRY.get_sample_value("eventlens_ingest_lag_seconds") or 0) < 60
