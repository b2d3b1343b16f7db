"""The SLO declaration loads, and its loader rejects what would generate wrong rules."""

from __future__ import annotations

import pydantic
import pytest

from eventlens.observability import metrics, slo


def test_shipped_file_declares_the_five_slos() -> None:
    slos = slo.load()
    assert [s.name for s in slos.slos] == [
        "capture-availability",
        "capture-latency",
        "ingest-freshness",
        "query-availability",
        "query-latency",
    ]
    assert 28 <= slos.window_days <= 30
    assert slos.capture_ack_threshold_seconds == slos.get("capture-latency").threshold_seconds
    assert slos.get("capture-availability").error_budget == pytest.approx(0.001)


def test_latency_thresholds_are_bucket_bounds_of_their_histograms() -> None:
    # A threshold between two bounds would make `le="X"` select no series: an SLI of nothing.
    bounds = {
        "eventlens_capture_ack_seconds": set(metrics.CAPTURE_ACK_BUCKETS),
        "eventlens_query_seconds": set(metrics.QUERY_BUCKETS),
        "eventlens_ingest_freshness_seconds": set(metrics.FRESHNESS_BUCKETS),
    }
    names = {m.name for m in metrics.REGISTRY.collect()}
    assert set(bounds) <= names
    for s in slo.load().slos:
        if isinstance(s.sli, slo.LatencySLI):
            assert s.sli.threshold_seconds in bounds.get(s.sli.metric, set()), s.name


def test_loader_rejects_unknown_keys_and_bad_objectives() -> None:
    text = slo.SLO_FILE.read_text()
    with pytest.raises(pydantic.ValidationError):
        slo.parse(text.replace("objective: 0.999", "objective: 1.5"))
    with pytest.raises(pydantic.ValidationError):
        slo.parse(text.replace("window_days: 28", "window_days: 28\nwindw: 3"))
    with pytest.raises(pydantic.ValidationError):
        slo.parse(text.replace("crash_loop_window: 15m", "crash_loop_window: soon"))


def test_duration_seconds() -> None:
    assert slo.duration_seconds("5m") == 300
    assert slo.duration_seconds("3d") == 3 * 86400
    with pytest.raises(ValueError, match="not <number>"):
        slo.duration_seconds("1h30m")
