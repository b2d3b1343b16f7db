"""The ingest log: framing, recovery of torn tails, segments, group commit, failures."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.errors import Unavailable
from eventlens.ingest.log import (
    HEADER_SIZE,
    IngestLog,
    LogReader,
    frame,
    list_segments,
    segment_name,
    wakeup_address,
)


def open_log(directory: Path, **kw: object) -> IngestLog:
    log = IngestLog(directory, **kw)  # type: ignore[arg-type]
    log.start()
    return log


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payloads=st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=40),
    segment_bytes=st.integers(min_value=1, max_value=2000),
    max_bytes=st.integers(min_value=1, max_value=3000),
)
def test_records_round_trip_across_segments_and_reopen(
    tmp_path_factory: pytest.TempPathFactory,
    payloads: list[bytes],
    segment_bytes: int,
    max_bytes: int,
) -> None:
    directory = tmp_path_factory.mktemp("log")
    log = open_log(directory, segment_bytes=segment_bytes)
    ends = [log.append_blocking(p) for p in payloads]
    # Offsets are global byte offsets: each record ends header + payload after the previous.
    expected_ends = []
    pos = 0
    for p in payloads:
        pos += HEADER_SIZE + len(p)
        expected_ends.append(pos)
    assert ends == expected_ends
    assert log.end_offset() == pos
    log.close()

    # No segment exceeds segment_bytes unless it holds a single record.
    bases = list_segments(directory)
    for base in bases:
        size = (directory / segment_name(base)).stat().st_size
        assert size <= segment_bytes or size in {HEADER_SIZE + len(p) for p in payloads}

    reopened = IngestLog(directory, segment_bytes=segment_bytes)
    assert reopened.end_offset() == pos
    reopened.close()

    reader = LogReader(directory)
    got: list[tuple[int, bytes]] = []
    offset = 0
    while offset < pos:
        chunk = reader.read(offset, max_bytes)
        assert chunk, "read must make progress"
        got.extend(chunk)
        offset = chunk[-1][0]
    reader.close()
    assert got == list(zip(ends, payloads, strict=True))


def test_segments_roll_over_and_offsets_continue(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=100)
    ends = [log.append_blocking(bytes([i]) * 40) for i in range(5)]
    assert ends == [48, 96, 144, 192, 240]
    # 48+48 fits in 100, a third record does not: segments start at 0, 96, 192.
    assert list_segments(tmp_path) == [0, 96, 192]
    assert [e for e, _ in log.read(96, 1000)] == [144, 192, 240]
    log.close()


def test_torn_tail_is_truncated_on_reopen(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    ends = [log.append_blocking(f"record {i}".encode()) for i in range(3)]
    log.close()
    seg = tmp_path / segment_name(0)
    # A crash mid-write: a header promising 100 bytes followed by only 10 of them.
    with seg.open("ab") as f:
        f.write(frame(b"x" * 100)[: HEADER_SIZE + 10])
    log = open_log(tmp_path)
    assert log.end_offset() == ends[-1]
    assert seg.stat().st_size == ends[-1]
    # New records continue exactly where the valid prefix ended.
    assert log.append_blocking(b"after") == ends[-1] + HEADER_SIZE + 5
    assert [p for _, p in log.read(0, 1 << 20)] == [b"record 0", b"record 1", b"record 2", b"after"]
    log.close()


def test_crc_mismatch_at_tail_is_truncated(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    ends = [log.append_blocking(f"record {i}".encode()) for i in range(3)]
    log.close()
    seg = tmp_path / segment_name(0)
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF  # last byte of the last payload
    seg.write_bytes(bytes(data))
    log = IngestLog(tmp_path)
    assert log.end_offset() == ends[1]
    assert [p for _, p in log.read(0, 1 << 20)] == [b"record 0", b"record 1"]
    log.close()


def test_concurrent_appends_share_fsyncs(tmp_path: Path) -> None:
    log = IngestLog(tmp_path)
    real_sync = log._sync
    calls = 0

    def slow_sync(fd: int) -> None:
        nonlocal calls
        calls += 1
        threading.Event().wait(0.01)  # a slow disk, so that requests pile up behind each fsync
        real_sync(fd)

    log._sync = slow_sync
    log.start()

    async def burst() -> list[int]:
        return await asyncio.gather(*(log.append(f"r{i}".encode()) for i in range(300)))

    ends = asyncio.run(burst())
    log.close()
    assert len(set(ends)) == 300
    assert calls == log.fsync_count
    assert log.fsync_count <= 30, f"{log.fsync_count} fsyncs for 300 concurrent appends"
    reader = LogReader(tmp_path)
    assert sorted(e for e, _ in reader.read(0, 1 << 20)) == sorted(ends)
    reader.close()


def test_blocking_appends_from_threads_share_fsyncs(tmp_path: Path) -> None:
    log = IngestLog(tmp_path)
    real_sync = log._sync

    def slow_sync(fd: int) -> None:
        threading.Event().wait(0.005)
        real_sync(fd)

    log._sync = slow_sync
    log.start()
    results: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(20):
            end = log.append_blocking(f"{n}:{i}".encode())
            with lock:
                results.append(end)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert len(set(results)) == 160
    assert log.fsync_count < 160


def test_append_after_close_raises_unavailable(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append_blocking(b"one")
    log.close()
    with pytest.raises(Unavailable, match="closed"):
        log.append_blocking(b"two")

    async def late() -> int:
        return await log.append(b"three")

    with pytest.raises(Unavailable, match="closed"):
        asyncio.run(late())
    log.close()  # idempotent


def test_fsync_failure_raises_unavailable_and_rolls_back(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    first = log.append_blocking(b"kept")
    real_sync = log._sync

    def failing_sync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    log._sync = failing_sync
    with pytest.raises(Unavailable, match="durable"):
        log.append_blocking(b"lost")
    log._sync = real_sync
    # The failed record was cut off: the next one takes its place and reads skip nothing.
    second = log.append_blocking(b"retried")
    assert second == first + HEADER_SIZE + len(b"retried")
    assert [p for _, p in log.read(0, 1 << 20)] == [b"kept", b"retried"]
    log.close()


def test_second_writer_on_same_directory_is_refused(tmp_path: Path) -> None:
    log = IngestLog(tmp_path)
    with pytest.raises(Unavailable, match="another process"):
        IngestLog(tmp_path)
    log.close()
    IngestLog(tmp_path).close()


def test_reader_stops_at_published_durable_end(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    end = log.append_blocking(b"durable")
    # Bytes written behind the writer's back (as if not yet fsynced) are not visible.
    with (tmp_path / segment_name(0)).open("ab") as f:
        f.write(frame(b"not yet durable"))
    reader = LogReader(tmp_path)
    assert reader.durable_end() == end
    assert reader.read(0, 1 << 20) == [(end, b"durable")]
    reader.close()
    log.close()


def test_drop_segments_before_keeps_newer_and_active(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=100)
    for i in range(5):
        log.append_blocking(bytes([i]) * 40)  # segments 0, 96, 192
    log.drop_segments_before(150)  # 0..96 is wholly before 150; 96..192 is not
    assert list_segments(tmp_path) == [96, 192]
    with pytest.raises(ValueError, match="before the oldest"):
        log.read(0, 100)
    log.drop_segments_before(10_000)  # never the active segment
    assert list_segments(tmp_path) == [192]
    assert [p for _, p in log.read(192, 1000)] == [bytes([4]) * 40]
    log.close()


def test_commit_sends_a_wakeup_datagram(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(wakeup_address(tmp_path))
    listener.settimeout(5)
    try:
        log = open_log(tmp_path)
        end = log.append_blocking(b"hello")
        assert int.from_bytes(listener.recv(64), "little") == end
        log.close()
    finally:
        listener.close()


def test_records_larger_than_max_bytes_are_still_read(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    big = os.urandom(10_000)
    end = log.append_blocking(big)
    log.append_blocking(b"small")
    assert log.read(0, 10) == [(end, big)]
    log.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=20),
    cut=st.floats(min_value=0.0, max_value=1.0),
)
def test_any_crash_point_keeps_exactly_the_whole_records_before_it(
    tmp_path_factory: pytest.TempPathFactory, payloads: list[bytes], cut: float
) -> None:
    directory = tmp_path_factory.mktemp("log")
    log = open_log(directory)
    ends = [log.append_blocking(p) for p in payloads]
    log.close()
    # A crash leaves any prefix of the unsynced bytes: cut the segment anywhere.
    seg = directory / segment_name(0)
    cut_at = int(cut * ends[-1])
    os.truncate(seg, cut_at)
    log = open_log(directory)
    kept = [(e, p) for e, p in zip(ends, payloads, strict=True) if e <= cut_at]
    assert log.end_offset() == (kept[-1][0] if kept else 0)
    assert log.read(0, 1 << 20) == kept
    # Appends continue right after the kept prefix.
    assert log.append_blocking(b"next") == log.end_offset() == (kept[-1][0] if kept else 0) + 12
    log.close()


def test_fsync_false_never_syncs_but_still_publishes(tmp_path: Path) -> None:
    log = IngestLog(tmp_path, fsync=False)

    def forbidden(fd: int) -> None:
        raise AssertionError("fsync=False must not sync")

    log._sync = forbidden
    log.start()
    end = log.append_blocking(b"fast")
    assert LogReader(tmp_path).durable_end() == end
    assert log.fsync_count == 1  # group commits, each of which would fsync when durable
    log.close()
