"""Shared helpers of the ingest tests: wait for the consumer, read what the table holds."""

from __future__ import annotations

import os
import time

from deltalake import DeltaTable

from eventlens.capture.model import CapturedEvent, encode_log_record
from eventlens.config import Settings
from eventlens.ingest.consumer import read_status
from eventlens.ingest.log import IngestLog, LogReader
from eventlens.storage.event_table import EventTable


def plant_records(
    settings: Settings, received_at: int, *records: tuple[int, list[CapturedEvent]]
) -> None:
    """Append (project, events) records to the ingest log directly, below capture's checks
    (no server may hold the log)."""
    log = IngestLog(settings.log_dir, fsync=False)
    log.start()
    try:
        for project_id, events in records:
            log.append_blocking(encode_log_record(project_id, received_at, events, []))
    finally:
        log.close()


def wait_caught_up(settings: Settings, timeout: float = 30.0) -> dict[str, object]:
    """Wait until the running consumer's checkpoint reached the log's durable end."""
    deadline = time.monotonic() + timeout
    status: dict[str, object] | None = None
    while time.monotonic() < deadline:
        status = read_status(settings)
        end = LogReader(settings.log_dir).durable_end()
        if status is not None and status["checkpoint"] == end and status["log_end"] == end:
            return status
        time.sleep(0.1)
    raise AssertionError(f"consumer did not catch up: {status}")


def stored_uuids(settings: Settings, project_id: int) -> list[str]:
    path = settings.event_table_dir(project_id)
    if not DeltaTable.is_deltatable(str(path)):
        return []  # not created yet: the consumer creates it with the first events
    table = EventTable.open_or_create(path)
    uuids: list[str] = table.snapshot().read(["uuid"]).column("uuid").to_pylist()
    return uuids


def consumer_pid(settings: Settings, not_in: set[int], timeout: float = 20.0) -> int:
    """Pid of a live consumer, different from the ones already killed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_status(settings)
        if status is not None and status["pid"] not in not_in:
            pid = int(status["pid"])
            try:
                os.kill(pid, 0)
                return pid
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    raise AssertionError("the supervisor did not restart the consumer")
