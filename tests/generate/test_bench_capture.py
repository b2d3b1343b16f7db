"""`eventlens bench capture`: the bodies it sends are real posthog /batch/ bodies, and a short
real run acknowledges events that all land in the table."""

from __future__ import annotations

import uuid

import orjson

from eventlens.bench.capture import (
    RunResult,
    _templates,
    build_body,
    ratios,
    run_capture_bench,
    summary,
    uuid_prefix,
)


def test_bodies_are_posthog_batches_with_fresh_valid_uuids() -> None:
    templates = _templates(50)
    prefix = uuid_prefix(0xABCDEF12, 3)
    seen: set[str] = set()
    for counter in (0, 100, 200):
        body = orjson.loads(build_body(templates, b"phc_t", prefix, counter, 100))
        assert body["api_key"] == "phc_t" and body["sent_at"]
        assert len(body["batch"]) == 100
        for event in body["batch"]:
            assert uuid.UUID(event["uuid"]).version == 7
            assert event["event"] and event["distinct_id"] and event["timestamp"]
            assert isinstance(event["properties"], dict) and "$browser" in event["properties"]
            seen.add(event["uuid"])
    assert len(seen) == 300
    other = orjson.loads(build_body(templates, b"phc_t", uuid_prefix(0xABCDEF12, 4), 0, 1))
    assert other["batch"][0]["uuid"] not in seen


def test_short_run_stores_every_acknowledged_event() -> None:
    lines: list[str] = []
    report = run_capture_bench(
        seconds=1.0, clients=1, batches=(20,), fsync_modes=(True,), warmup=0.2, say=lines.append
    )
    (server,) = report["servers"]
    (run,) = server["runs"]
    assert run["errors"] == 0 and run["events_per_s"] > 0 and 0 < run["p50_ms"] <= run["p99_ms"]
    assert server["verified"] and server["stored"] == server["acked_total"] > 0
    assert report["machine"]["cores"] and any("acknowledged" in line for line in lines)


def _run(fsync: bool, batch: int, eps: float) -> RunResult:
    return RunResult(
        fsync=fsync, batch=batch, clients=1, seconds=1.0, events_per_s=eps, requests_per_s=1.0,
        p50_ms=1.0, p99_ms=2.0, max_ms=3.0, errors=0, acked_total=1, server_cpu_s=1.0,
        consumer_cpu_s=1.0, client_cpu_s=1.0, wall_s=1.0, events_per_cpu_s=1.0, load_1m=0.0,
    )  # fmt: skip


def test_ratio_is_of_medians_over_rounds() -> None:
    runs = [_run(True, 100, v) for v in (10.0, 30.0, 20.0)]
    runs += [_run(False, 100, v) for v in (40.0, 1000.0, 35.0)] + [_run(True, 1, 5.0)]
    by = {(m["fsync"], m["batch"]): m for m in summary(runs)}
    assert by[(True, 100)]["events_per_s"] == 20.0 and by[(True, 100)]["runs"] == 3
    assert by[(False, 100)]["events_per_s"] == 40.0
    assert ratios(runs) == {"100": 0.5}  # batch 1 ran only durable: no ratio
