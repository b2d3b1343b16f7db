"""Poison records never block the pipeline (issue 10): a record the consumer cannot apply is
quarantined to its project's dead letters, the other projects' events land, and replay brings
the quarantined events back once the cause is gone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventlens.capture.model import CapturedEvent
from eventlens.config import Settings
from eventlens.ingest.consumer import Consumer, write_exit
from eventlens.ingest.project_writer import LogRecord, ProjectWriter
from eventlens.storage import deadletters
from tests.ingest.helpers import plant_records, stored_uuids
from tests.support.server import ServerProcess, create_project, run_cli

T0 = 1_700_000_000_000_000


def _event(name: str, distinct_id: str, ts: int = T0) -> CapturedEvent:
    return CapturedEvent(str(uuid.uuid4()), name, distinct_id, ts, {"k": "v"})


def _plant(settings: Settings, *records: tuple[int, list[CapturedEvent]]) -> None:
    plant_records(settings, T0, *records)


def _wait_stored(settings: Settings, project_id: int, uuids: list[str], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if set(uuids) <= set(stored_uuids(settings, project_id)):
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"project {project_id}: events not stored within {timeout} s")


def _metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_nul_distinct_ids_do_not_stop_ingest_of_other_projects(data_dir: Path) -> None:
    """Defect 1: "p" and "p\\0q" in one batch, then "a\\0b" twice, crash-looped the consumer
    and every other project's events stayed pending."""
    a = create_project(data_dir, "a")
    b = create_project(data_dir, "b")
    settings = Settings().with_data_dir(data_dir)
    pa_, pb = int(a["id"]), int(b["id"])
    # Straight into the log: whatever capture accepts, the storage side must be exact.
    planted = [_event("x", "p"), _event("x", "p\x00q")]
    again = [_event("x", "a\x00b")], [_event("x", "a\x00b"), _event("x", "a")]
    _plant(settings, (pa_, planted), (pa_, again[0]), (pa_, again[1]))
    server = ServerProcess(data_dir).start()
    try:
        sent_a: list[str] = []
        for did in ["a\x00b", "a\x00b", "p\x00\x00"]:
            u = str(uuid.uuid4())
            body = {"api_key": a["token"], "batch": [{"event": "x", "distinct_id": did, "uuid": u}]}
            r = httpx.post(server.url + "/batch/", json=body)
            # Capture may refuse control characters in ids (a 400, or a 200 naming the event
            # in `rejected`: dead-lettered); what it acknowledges as accepted is stored.
            assert r.status_code in (200, 400), r.text
            if r.status_code == 200 and not r.json().get("rejected"):
                sent_a.append(u)
            time.sleep(0.7)  # separate commits: the second "a\0b" meets the first in the store
        ub = [str(uuid.uuid4()) for _ in range(5)]
        batch = [{"event": "y", "distinct_id": f"u{i}", "uuid": u} for i, u in enumerate(ub)]
        assert (
            httpx.post(
                server.url + "/batch/", json={"api_key": b["token"], "batch": batch}
            ).status_code
            == 200
        )
        assert _wait_stored(settings, pb, ub, timeout=15) < 15
        all_a = [e.uuid for e in planted + again[0] + again[1]] + sent_a
        _wait_stored(settings, pa_, all_a, timeout=15)
        assert _metric(server.url, "eventlens_ingest_consumer_restarts_total") == 0
        assert httpx.get(server.url + "/_ready").status_code == 200
    finally:
        server.stop()
    w = ProjectWriter(settings, pa_)
    try:
        dids = {d for (d,) in w.conn.execute("SELECT distinct_id FROM distinct_ids")}
    finally:
        w.close()
    assert {"p", "p\x00q", "a\x00b", "a"} <= dids
    assert not [d for d in dids if "\x00" not in d and d not in {"p", "a"}]


class FlakyWriter(ProjectWriter):
    """The real writer, made to fail on any record holding an event named "poison" (a stand-in
    for a bug in the apply path), while `broken` is set."""

    broken = True

    def apply(self, records: list[LogRecord]) -> int | None:
        if self.broken and any(e.event == "poison" for r in records for e in r.events):
            raise ValueError("cannot apply poison")
        return super().apply(records)


def _run_until_caught_up(consumer: Consumer) -> None:
    end = consumer.reader.durable_end()
    for _ in range(20):
        if consumer.offset >= end:
            return
        consumer.step()
    raise AssertionError("consumer did not reach the log end")


def test_poison_record_is_quarantined_listed_and_replayed(data_dir: Path) -> None:
    a = create_project(data_dir, "a")
    b = create_project(data_dir, "b")
    settings = Settings().with_data_dir(data_dir)
    pa_, pb = int(a["id"]), int(b["id"])
    before, after = [_event("ok", "d1")], [_event("ok", "d2")]
    poison = [_event("poison", "d3"), _event("fine-but-same-record", "d3")]
    other = [_event("ok", "e1")]
    _plant(settings, (pa_, before), (pa_, poison), (pb, other), (pa_, after))
    consumer = Consumer(settings, writer_factory=FlakyWriter)
    try:
        _run_until_caught_up(consumer)
        assert consumer.quarantined == 1
    finally:
        consumer.close()
    assert sorted(stored_uuids(settings, pa_)) == sorted(e.uuid for e in before + after)
    assert stored_uuids(settings, pb) == [other[0].uuid]
    dl = deadletters.list_(settings, pa_)
    assert [d.payload["uuid"] for d in dl] == [e.uuid for e in poison]
    assert all(
        d.reason == "quarantined by the ingest consumer: ValueError: cannot apply poison"
        for d in dl
    )
    listed = json.loads(run_cli("deadletter", "list", "--json", data_dir=data_dir).stdout)
    assert [(d["project"], d["reason"]) for d in listed] == [(pa_, dl[0].reason)] * 2

    # The cause is fixed (the real writer): replay appends the events again, with their uuids.
    out = run_cli("deadletter", "replay", "--project", str(pa_), "--json", data_dir=data_dir)
    assert json.loads(out.stdout)[0]["replayed"] == [d.id for d in dl]
    consumer = Consumer(settings)
    try:
        _run_until_caught_up(consumer)
    finally:
        consumer.close()
    stored = stored_uuids(settings, pa_)
    assert sorted(stored) == sorted(e.uuid for e in before + after + poison)
    assert deadletters.count(settings, pa_) == 0


def test_environment_errors_are_retried_not_quarantined(data_dir: Path) -> None:
    """A full disk fails every record the same way: that must stop and retry, never throw the
    events away."""
    settings = Settings().with_data_dir(data_dir)
    events = [_event("ok", "d1")]
    _plant(settings, (1, events))

    class FullDisk(ProjectWriter):
        def apply(self, records: list[LogRecord]) -> int | None:
            raise OSError(28, "No space left on device")

    consumer = Consumer(settings, writer_factory=FullDisk)
    try:
        with pytest.raises(OSError):
            consumer.step()
        assert consumer.quarantined == 0
    finally:
        consumer.close()
    consumer = Consumer(settings)
    try:
        _run_until_caught_up(consumer)
    finally:
        consumer.close()
    assert stored_uuids(settings, 1) == [events[0].uuid]
    assert deadletters.count(settings, 1) == 0


_CRASHING_CONSUMER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from eventlens.config import Settings
    from eventlens.ingest.consumer import Consumer
    from eventlens.ingest.project_writer import ProjectWriter

    class Segfaulting(ProjectWriter):
        def apply(self, records):
            if any(e.event == "poison" for r in records for e in r.events):
                os.kill(os.getpid(), signal.SIGSEGV)  # a crash in native code, say
            return super().apply(records)

    c = Consumer(Settings().with_data_dir(Path(sys.argv[1])), writer_factory=Segfaulting)
    end = c.reader.durable_end()
    while c.offset < end:
        c.step()
    print(c.quarantined)
    c.close()
    """
)


def test_record_that_crashes_the_process_twice_is_quarantined(
    data_dir: Path, tmp_path: Path
) -> None:
    settings = Settings().with_data_dir(data_dir)
    good_a, poison, good_b = [_event("ok", "d1")], [_event("poison", "d2")], [_event("ok", "e")]
    _plant(settings, (1, good_a), (1, poison), (2, good_b))
    script = tmp_path / "crashing_consumer.py"
    script.write_text(_CRASHING_CONSUMER)
    codes = []
    for _ in range(4):
        # This test plays the supervisor: run the consumer, record how it ended.
        proc = subprocess.run(
            [sys.executable, str(script), str(data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        codes.append(proc.returncode)
        if proc.returncode == 0:
            assert proc.stdout.strip().splitlines()[-1] == "1"
            break
        write_exit(settings, _last_pid(settings), proc.returncode)
    # Once in its batch, then twice on its own: quarantined by the fourth process.
    assert codes == [-11, -11, -11, 0], codes
    assert stored_uuids(settings, 1) == [good_a[0].uuid]
    assert stored_uuids(settings, 2) == [good_b[0].uuid]
    dl = deadletters.list_(settings, 1)
    assert [d.payload["uuid"] for d in dl] == [poison[0].uuid]
    assert "SIGSEGV" in dl[0].reason and "2 times" in dl[0].reason


def _last_pid(settings: Settings) -> int:
    mark: dict[str, Any] = json.loads((settings.data_dir / "consumer" / "attempt.json").read_text())
    return int(mark["pid"])


def test_planted_unappliable_record_through_a_real_server(data_dir: Path) -> None:
    """A record the real writer cannot apply (a timestamp beyond int64 µs, which capture never
    produces; it used to crash-loop the consumer) is quarantined by the server's consumer while
    another project's events land."""
    a = create_project(data_dir, "a")
    b = create_project(data_dir, "b")
    settings = Settings().with_data_dir(data_dir)
    pa_, pb = int(a["id"]), int(b["id"])
    bad = [_event("x", "d", ts=2**63 + 1)]
    _plant(settings, (pa_, bad))
    server = ServerProcess(data_dir).start()
    try:
        ub = str(uuid.uuid4())
        body = {"api_key": b["token"], "batch": [{"event": "y", "distinct_id": "u", "uuid": ub}]}
        assert httpx.post(server.url + "/batch/", json=body).status_code == 200
        _wait_stored(settings, pb, [ub], timeout=15)
        listed = json.loads(run_cli("deadletter", "list", "--json", data_dir=data_dir).stdout)
        assert [(d["project"], d["payload"]["uuid"]) for d in listed] == [(pa_, bad[0].uuid)]
        assert listed[0]["reason"].startswith("quarantined by the ingest consumer: Overflow")
        deadline = time.monotonic() + 10
        while _metric(server.url, "eventlens_ingest_quarantined_records_total") != 1:
            assert time.monotonic() < deadline, "quarantine not counted in /metrics"
            time.sleep(0.2)
        assert _metric(server.url, "eventlens_ingest_consumer_restarts_total") == 0
    finally:
        server.stop()
