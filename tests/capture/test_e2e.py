"""Real SDKs against a real `eventlens serve` on loopback: what reaches the ingest log and, via
the consumer, the Delta event table (person_id, timestamp, properties, dedupe)."""

from __future__ import annotations

import base64
import gzip
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest
from posthog import Posthog
from segment.analytics import Client as SegmentClient

from eventlens.capture.model import CapturedEvent, decode_log_record
from eventlens.config import Settings
from eventlens.ingest.log import LogReader
from eventlens.storage.event_table import EventTable
from eventlens.storage.schema import person_id_for
from tests.support.server import ServerProcess

TS = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
TS_US = int(TS.timestamp()) * 1_000_000


def logged(data_dir: Path) -> list[CapturedEvent]:
    reader = LogReader(Settings().with_data_dir(data_dir).log_dir)
    try:
        return [e for _, p in reader.read(0, 1 << 30) for e in decode_log_record(p)[2]]
    finally:
        reader.close()


def table_rows(data_dir: Path, pid: int, want: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Rows of the project's event table once at least `want` are visible (polls up to 10 s)."""
    path = Settings().with_data_dir(data_dir).event_table_dir(pid)
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if (path / "_delta_log").exists():
            t: pa.Table = (
                EventTable.open_or_create(path)
                .snapshot()
                .read(["uuid", "event", "distinct_id", "person_id", "timestamp", "properties"])
            )
            rows = t.to_pylist()
            if len(rows) >= want:
                return rows
        time.sleep(0.1)
    raise AssertionError(f"only {len(rows)} of {want} rows reached the table in {timeout} s")


@pytest.fixture
def errors() -> Iterator[list[Any]]:
    found: list[Any] = []
    yield found
    assert found == [], f"SDK reported errors: {found}"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_posthog_python(
    server: ServerProcess, project: dict[str, Any], data_dir: Path, gz: bool, errors: list[Any]
) -> None:
    pid = int(project["id"])
    client = Posthog(
        project["token"], host=server.url, gzip=gz, on_error=lambda e, b: errors.append(e)
    )
    first = client.capture(
        "signed_up", distinct_id="user-1", properties={"plan": "pro"}, timestamp=TS
    )
    client.capture("$identify", distinct_id="user-1", properties={"$anon_distinct_id": "anon-1"})
    client.alias(previous_id="anon-2", distinct_id="user-1")
    client.set(distinct_id="user-1", properties={"name": "Max"})
    client.capture("clicked", distinct_id="anon-1", properties={"n": 7})
    client.flush()
    client.shutdown()

    events = {e.event: e for e in logged(data_dir)}
    assert set(events) == {"signed_up", "$identify", "$create_alias", "$set", "clicked"}
    assert events["signed_up"].uuid == first
    assert abs(events["signed_up"].timestamp - TS_US) < 5_000_000  # skew-corrected
    assert events["$set"].properties["$set"] == {"name": "Max"}
    # posthog-python sends alias as distinct_id=previous_id, properties.alias=distinct_id.
    alias = events["$create_alias"]
    assert (alias.distinct_id, alias.properties["alias"]) == ("anon-2", "user-1")

    rows = {r["event"]: r for r in table_rows(data_dir, pid, 5)}
    user = person_id_for(pid, "user-1")
    assert rows["signed_up"]["person_id"] == user
    assert rows["signed_up"]["uuid"] == first
    assert abs(rows["signed_up"]["timestamp"] - TS).total_seconds() < 5
    assert orjson.loads(rows["signed_up"]["properties"])["plan"] == "pro"
    # anon-1 was joined to user-1 by $identify before it had events.
    assert rows["clicked"]["person_id"] == user


def test_segment_python(
    server: ServerProcess, project: dict[str, Any], data_dir: Path, errors: list[Any]
) -> None:
    pid = int(project["id"])
    client = SegmentClient(
        project["token"], host=server.url, on_error=lambda e, b: errors.append(e)
    )
    client.track(user_id="u-9", event="Order Completed", properties={"total": 42}, timestamp=TS)
    client.identify(user_id="u-9", traits={"email": "a@b.c"})
    client.page(user_id="u-9", name="Home", properties={"url": "https://x.test/"})
    client.screen(user_id="u-9", name="Main")
    client.group(user_id="u-9", group_id="acme", traits={"size": 5})
    client.alias(previous_id="anon-9", user_id="u-9")
    client.flush()
    client.shutdown()

    events = {e.event: e for e in logged(data_dir)}
    assert set(events) == {
        "Order Completed",
        "$identify",
        "$pageview",
        "$screen",
        "$groupidentify",
        "$create_alias",
    }
    assert events["$identify"].properties["$set"] == {"email": "a@b.c"}
    rows = {r["event"]: r for r in table_rows(data_dir, pid, 6)}
    order = rows["Order Completed"]
    assert order["person_id"] == person_id_for(pid, "u-9")
    assert abs(order["timestamp"] - TS).total_seconds() < 5
    assert orjson.loads(order["properties"])["total"] == 42


def test_posthog_js_shaped_requests(
    server: ServerProcess, project: dict[str, Any], data_dir: Path
) -> None:
    pid, token = int(project["id"]), project["token"]

    def ev(name: str) -> dict[str, Any]:
        return {
            "event": name,
            "properties": {"token": token, "distinct_id": "web-1", "$current_url": "/p"},
            "timestamp": TS.isoformat(),
        }

    # The browser's clock runs 1 h fast: `_` (sent_at, epoch ms) and its timestamps both do.
    skewed_now_ms = str(int(time.time() * 1000) + 3_600_000)
    with httpx.Client(base_url=server.url, headers={"Origin": "https://site.test"}) as http:
        config = http.get(f"/array/{token}/config")
        assert config.json()["supportedCompression"] == ["gzip-js", "base64"]
        r = http.post(
            f"/e/?compression=gzip-js&ip=1&_={skewed_now_ms}&ver=1.200.0",
            content=gzip.compress(orjson.dumps([ev("$pageview"), ev("$autocapture")])),
            headers={"Content-Type": "text/plain"},
        )
        assert (r.status_code, r.json()) == (200, {"status": 1})
        assert r.headers["access-control-allow-origin"] == "https://site.test"
        data = base64.b64encode(orjson.dumps(ev("form_event"))).decode()
        r = http.post(
            "/e/",
            data={"data": data, "compression": "base64"},
        )
        assert r.status_code == 200, r.text
        r = http.get("/e/", params={"data": base64.b64encode(orjson.dumps(ev("beacon"))).decode()})
        assert r.status_code == 200, r.text

    rows = table_rows(data_dir, pid, 4)
    assert sorted(r["event"] for r in rows) == ["$autocapture", "$pageview", "beacon", "form_event"]
    assert {r["person_id"] for r in rows} == {person_id_for(pid, "web-1")}
    # Stored = server now + (timestamp - sent_at): the hour of skew is taken out. Requests
    # without `_` keep their timestamp as sent.
    by_event = {r["event"]: r for r in rows}
    assert abs(by_event["form_event"]["timestamp"] - TS).total_seconds() < 1
    corrected = (by_event["$pageview"]["timestamp"] - TS).total_seconds()
    assert abs(corrected + 3600) < 5, corrected


def test_duplicate_delivery_stored_once(
    server: ServerProcess, project: dict[str, Any], data_dir: Path
) -> None:
    pid = int(project["id"])
    dup = str(uuid.uuid4())
    body = {
        "api_key": project["token"],
        "batch": [{"event": "paid", "distinct_id": "u", "uuid": dup, "properties": {"a": 1}}],
    }
    for _ in range(2):
        assert httpx.post(server.url + "/batch/", json=body).status_code == 200
    marker = {"api_key": project["token"], "batch": [{"event": "marker", "distinct_id": "u"}]}
    assert httpx.post(server.url + "/batch/", json=marker).status_code == 200
    # The log is consumed in order: once the marker is visible, both copies were processed.
    rows = table_rows(data_dir, pid, 2)
    assert sorted(r["event"] for r in rows) == ["marker", "paid"]
    assert [r["uuid"] for r in rows if r["event"] == "paid"] == [dup]
