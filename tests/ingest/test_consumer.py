"""The consumer in-process, over a real log and real per-project Delta tables."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from eventlens.capture.model import CapturedEvent, DeadLetter, encode_log_record
from eventlens.config import Settings
from eventlens.errors import Unavailable
from eventlens.ingest.consumer import Consumer, read_status
from eventlens.ingest.log import IngestLog, list_segments
from eventlens.storage import deadletters
from tests.ingest.helpers import stored_uuids


def fill(log: IngestLog, project_id: int, records: int, per: int) -> list[str]:
    now = int(time.time() * 1e6)
    uuids = []
    for r in range(records):
        events = []
        for i in range(per):
            u = str(uuid.uuid4())
            uuids.append(u)
            events.append(CapturedEvent(u, "view", f"user-{(r + i) % 5}", now - i, {"i": i}))
        dead = [DeadLetter(per, "missing distinct_id", {"event": "view"})] if r == 0 else []
        log.append_blocking(encode_log_record(project_id, now, events, dead))
    return uuids


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings().with_data_dir(tmp_path / "data")


def test_crash_between_apply_and_checkpoint_replays_without_duplicates(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = IngestLog(settings.log_dir, segment_bytes=4096)
    log.start()
    one = fill(log, 1, 20, 5)
    two = fill(log, 2, 10, 3)
    end = log.end_offset()

    crashing = Consumer(settings, max_batch_bytes=6000)

    def crash(offset: int) -> None:
        raise RuntimeError("killed before the checkpoint was saved")

    monkeypatch.setattr(crashing, "_save_checkpoint", crash)
    with pytest.raises(RuntimeError):
        crashing.step()  # the tables got the first batch, the checkpoint did not move
    crashing.close()
    monkeypatch.undo()

    consumer = Consumer(settings, max_batch_bytes=6000)
    assert consumer.offset == 0
    steps = 0
    while consumer.offset < end:
        assert consumer.step() > 0
        steps += 1
    assert steps > 1  # several batches, so the resumption crossed batch boundaries
    consumer.close()
    log.close()

    for project_id, expected in ((1, one), (2, two)):
        stored = stored_uuids(settings, project_id)
        assert sorted(stored) == sorted(expected)
        # Dead letters are replayed too, and stored once.
        assert deadletters.count(settings, project_id) == 1
    status = read_status(settings)
    assert status is not None
    assert status["checkpoint"] == end and status["lag_bytes"] == 0
    # Segments wholly behind the checkpoint are gone; the newest one stays.
    assert list_segments(settings.log_dir)[0] > 0


def test_consumer_resumes_from_its_checkpoint(settings: Settings) -> None:
    log = IngestLog(settings.log_dir)
    log.start()
    first = fill(log, 7, 3, 4)
    consumer = Consumer(settings)
    consumer.step()
    checkpoint = consumer.offset
    assert checkpoint == log.end_offset()
    consumer.close()

    second = fill(log, 7, 2, 4)
    consumer = Consumer(settings)
    assert consumer.offset == checkpoint
    assert consumer.step() == 2  # only the two new records are read
    assert sorted(stored_uuids(settings, 7)) == sorted(first + second)
    status = read_status(settings)
    assert status is not None and status["last_batch"] == {
        "records": 2,
        "events": 8,
        "dead": 1,  # fill() adds one dead letter to its first record
        "projects": 1,
    }
    consumer.close()
    log.close()


def test_one_consumer_per_data_dir(settings: Settings) -> None:
    first = Consumer(settings)
    with pytest.raises(Unavailable, match="another ingest consumer"):
        Consumer(settings, lock_timeout=0.2)
    first.close()
    Consumer(settings, lock_timeout=0.2).close()


def test_checkpoint_past_the_log_end_is_refused(settings: Settings) -> None:
    log = IngestLog(settings.log_dir)
    log.start()
    fill(log, 1, 1, 1)
    consumer = Consumer(settings)
    consumer._save_checkpoint(log.end_offset() + 1000)
    consumer.close()
    consumer = Consumer(settings)
    with pytest.raises(Unavailable, match="past the ingest log end"):
        consumer.run(lambda: False)
    consumer.close()
    log.close()
