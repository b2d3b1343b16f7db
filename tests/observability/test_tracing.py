"""Tracing end to end: a real server (and its consumer process) exporting OTLP/HTTP protobuf to
a loopback receiver, configured only by the standard OTEL_* variables (docs/adr/0011).

One server for the module: capture (its append + fsync spans, and the consumer's commit span
linked to the capture request), the tree of one query (one span per sub-task under its plan,
with worker and bucket), and a 500 whose body and log line carry the request's trace id.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventlens.config import Settings
from eventlens.observability import tracing
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.server import ServerProcess, create_project

USERS = 48  # spread over the 16 person buckets, so the query has many sub-tasks
SERVER_KIND = 2  # opentelemetry.proto SPAN_KIND_SERVER


@pytest.fixture(scope="module")
def traced(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, Any], OtlpReceiver]]:
    receiver = OtlpReceiver().start()
    data_dir = tmp_path_factory.mktemp("traced") / "data"
    project = create_project(data_dir, "p")
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "eventlens-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # export within 50 ms, not the default 5 s
        # Room for every span of the test's polling queries: a full queue drops new spans.
        "OTEL_BSP_MAX_QUEUE_SIZE": "65536",
        "EVENTLENS_QUERY_MIN_TASK_ROWS": "0",  # one sub-task per non-empty bucket
        "EVENTLENS_QUERY_WARM": "0",
        "EVENTLENS_SHADOW_CANDIDATE": "reference",  # every query also runs in shadow mode
        "EVENTLENS_SHADOW_PRIMARY": "parallel",
        "EVENTLENS_SHADOW_QUEUE": "1000",  # never shed (the polling queries come first)
    }
    server = ServerProcess(data_dir, env=env).start()
    try:
        yield server, project, receiver
    finally:
        server.stop()
        receiver.stop()


def _traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def _capture(server: ServerProcess, token: str) -> str:
    """POST a /batch/ of one event per user; the trace id we sent it under."""
    header, trace_id, _ = _traceparent()
    now = datetime.now(UTC)
    batch = [
        {
            "event": "$pageview",
            "distinct_id": f"user-{i}",
            "properties": {"i": i},
            "timestamp": (now - timedelta(minutes=i)).isoformat(),
        }
        for i in range(USERS)
    ]
    r = httpx.post(
        f"{server.url}/batch/",
        json={"api_key": token, "batch": batch},
        headers={"traceparent": header},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return trace_id


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan, name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_id == parent.span_id and s.name == name]


def _descends(spans: list[ReceivedSpan], span: ReceivedSpan, ancestor: ReceivedSpan) -> bool:
    by_id = {s.span_id: s for s in spans}
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        if span is ancestor:
            return True
    return False


def _one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def test_capture_spans_and_consumer_commit_links_to_the_capture_request(
    traced: tuple[ServerProcess, dict[str, Any], OtlpReceiver],
) -> None:
    server, project, receiver = traced
    trace_id = _capture(server, project["token"])

    def committed(spans: list[ReceivedSpan]) -> bool:
        return any(
            s.name == "ingest.consumer.commit" and any(link[0] == trace_id for link in s.links)
            for s in spans
        )

    spans = receiver.wait_for(committed)
    ours = [s for s in spans if s.trace_id == trace_id]
    request = _one(ours, "POST /batch/")
    assert request.kind == SERVER_KIND and request.service == "eventlens-under-test"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["http.route"] == "/batch/"
    append = _children(ours, request, "ingest.log.append")
    assert len(append) == 1 and append[0].attributes["eventlens.project_id"] == int(project["id"])
    fsync = _children(ours, append[0], "ingest.log.fsync")
    assert len(fsync) == 1 and fsync[0].attributes["eventlens.group_size"] >= 1
    # The disk write happened inside the append's wait.
    assert append[0].start_ns <= fsync[0].start_ns <= fsync[0].end_ns <= append[0].end_ns

    commit = next(s for s in spans if s.name == "ingest.consumer.commit" and s.links)
    assert commit.trace_id != trace_id  # its own trace, in the consumer process
    linked = [link for link in commit.links if link[0] == trace_id]
    assert [link[1] for link in linked] == [request.span_id]  # the capture request's span
    assert linked[0][2]["eventlens.log_offset"] > 0
    applied = [s for s in spans if s.parent_id == commit.span_id]
    assert {s.name for s in applied} >= {"ingest.consumer.apply", "ingest.consumer.syncfs"}


def _wait_queryable(server: ServerProcess, project: dict[str, Any], body: dict[str, Any]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = httpx.post(
            f"{server.url}/api/projects/{project['id']}/query",
            json=body,
            headers={"Authorization": f"Bearer {project['api_key']}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        if sum(r.json()["results"][0]["data"]) >= USERS:
            return
        time.sleep(0.1)
    raise AssertionError("captured events never became queryable")


def test_one_query_is_one_tree_with_a_span_per_subtask_under_its_plan(
    traced: tuple[ServerProcess, dict[str, Any], OtlpReceiver],
) -> None:
    server, project, receiver = traced
    _capture(server, project["token"])
    body = {
        "query": {
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview"}],
            "dateRange": {"date_from": "-7d"},
        }
    }
    _wait_queryable(server, project, body)

    header, trace_id, caller_span = _traceparent()
    r = httpx.post(
        f"{server.url}/api/projects/{project['id']}/query",
        # Computed, not the answer the wait above cached: the tree under test is a computation.
        json={**body, "refresh": "force_blocking"},
        headers={"Authorization": f"Bearer {project['api_key']}", "traceparent": header},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    spans = receiver.wait_for(
        lambda spans: (
            any(s.trace_id == trace_id and s.parent_id == caller_span for s in spans)
            and any(s.trace_id == trace_id and s.name == "query" for s in spans)
        ),
        timeout=120,  # a loaded CI machine exports late, never wrongly
    )
    ours = [s for s in spans if s.trace_id == trace_id]
    request = _one(ours, "POST /api/projects/{project_id}/query")
    assert request.parent_id == caller_span  # the incoming traceparent was continued
    query = _one(ours, "query")
    assert _descends(ours, query, request)  # (through FastAPI's endpoint span)
    assert query.attributes["eventlens.query.kind"] == "TrendsQuery"
    assert query.attributes["eventlens.query.outcome"] == "ok"
    assert len(_children(ours, query, "query.snapshot")) == 1
    # The result cache is on: force_blocking computes under the lookup, from scratch.
    [lookup] = _children(ours, query, "query.cache_lookup")
    assert lookup.attributes["eventlens.cache.result"] == "miss"
    [execute] = [s for s in ours if s.name == "query.execute"]
    assert _descends(ours, execute, lookup)
    [plan] = _children(ours, execute, "query.plan")
    subtasks = _children(ours, plan, "query.subtask")
    assert len(subtasks) == plan.attributes["eventlens.subtasks"] > 1
    assert len([s for s in ours if s.name == "query.subtask"]) == len(subtasks)  # none elsewhere
    buckets = [b for s in subtasks for b in s.attributes["eventlens.bucket"]]
    assert len(buckets) == len(set(buckets))  # each bucket in exactly one sub-task
    assert all(0 <= b < Settings().buckets for b in buckets)
    assert sum(s.attributes["eventlens.rows"] for s in subtasks) >= USERS
    for s in subtasks:
        assert s.attributes["eventlens.worker"].startswith("eventlens-part")  # pool threads
        assert s.attributes["eventlens.source"] in ("resident", "storage")
    assert len(_children(ours, plan, "query.merge")) == 1
    # The span and the answer agree on the data version.
    assert (
        _one(ours, "query.snapshot").attributes["eventlens.data_version"]
        == r.json()["data_version"]
    )
    # The log line of this query carries its trace.
    done = [
        x
        for x in _log_lines(server.data_dir / "server.log")
        if x.get("event") == "query.done" and x.get("trace_id") == trace_id
    ]
    assert len(done) == 1 and done[0]["kind"] == "TrendsQuery"

    # Shadow mode ran the query again on the candidate: its own trace, linked to the span the
    # computation ran under (the cache lookup of the query).
    spans = receiver.wait_for(
        lambda spans: any(
            s.name == "shadow.run" and (trace_id, lookup.span_id) in [x[:2] for x in s.links]
            for s in spans
        ),
        timeout=90,  # behind the polling queries' shadow runs, on a shared machine
    )
    shadow = next(s for s in spans if s.name == "shadow.run" and s.links[0][0] == trace_id)
    assert shadow.trace_id != trace_id
    assert shadow.attributes["eventlens.shadow.candidate"] == "reference"
    assert shadow.attributes["eventlens.shadow.outcome"] == "match"


def _log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_500_carries_the_trace_id_in_its_body_and_log_line(
    traced: tuple[ServerProcess, dict[str, Any], OtlpReceiver],
) -> None:
    server, project, receiver = traced
    url = f"{server.url}/api/projects/{project['id']}/insights"
    auth = {"Authorization": f"Bearer {project['api_key']}"}
    assert httpx.get(url, headers=auth).status_code == 200  # the store creates its tables
    db = sqlite3.connect(Settings().with_data_dir(server.data_dir).meta_db)
    db.execute("DROP TABLE saved_insights")
    db.commit()
    db.close()
    header, trace_id, _ = _traceparent()
    r = httpx.get(url, headers={**auth, "traceparent": header})
    assert r.status_code == 500
    body = r.json()
    assert body["trace_id"] == trace_id and body["error_id"]
    lines = _log_lines(server.data_dir / "server.log")
    [line] = [x for x in lines if x.get("error_id") == body["error_id"]]
    assert line["trace_id"] == trace_id and len(line["span_id"]) == 16
    # The server span ends last (after the response), often in a later export than its children.
    spans = receiver.wait_for(
        lambda spans: any(s.trace_id == trace_id and s.kind == SERVER_KIND for s in spans)
    )
    [request] = [s for s in spans if s.trace_id == trace_id and s.kind == SERVER_KIND]
    assert request.status_code == 2  # STATUS_CODE_ERROR
    assert request.attributes["http.response.status_code"] == 500


def test_off_by_default_and_by_otel_sdk_disabled() -> None:
    assert tracing._exporters({}) == []
    assert tracing._exporters({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}) == ["otlp"]
    assert tracing._exporters({"OTEL_TRACES_EXPORTER": "none"}) == []
    off = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}
    assert tracing._exporters(off) == []
    assert tracing._exporters({"OTEL_TRACES_EXPORTER": "console,otlp"}) == ["console", "otlp"]


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_an_exporter_we_do_not_ship_is_refused_by_name(env: dict[str, str], field: str) -> None:
    with pytest.raises(tracing.TracingConfigError) as raised:
        tracing._exporters(env)
    assert raised.value.variable == field and field in str(raised.value)
