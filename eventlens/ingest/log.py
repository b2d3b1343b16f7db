"""The durable ingest log: one append-only, group-committed log for all projects.

Layout of `directory` (see docs/adr/0001-ingest-log-and-consumer.md):

    00000000000000000000.seg   segment files, named by the global byte offset of their first byte
    00000000000067108901.seg   (a new segment starts when the current one would pass segment_bytes)
    durable                    [u64 durable end][u32 crc32 of it][4 pad]: how far readers may read
    writer.lock                flock'd by the one IngestLog (server) that may append

A record is framed `[u32 length][u32 crc32(payload)][payload]` (little endian). An offset is a
global byte offset across segments; a record is identified by its *end* offset (the offset of
the next record), which is what `append` returns and what the consumer checkpoints.

Only the server appends (`IngestLog`); the consumer process reads through `LogReader`, which
never truncates or writes and only reads below the published durable end: reading a record that
is written but not yet fsynced could put into the table an event that a power cut then removes
from the log, and its offsets would be reused by other records.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import itertools
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from eventlens.errors import PayloadTooLarge, Unavailable
from eventlens.observability import tracing
from eventlens.observability.logging import get_logger
from eventlens.observability.metrics import ingest_fsync_seconds, ingest_group_size

_log = get_logger(__name__)

HEADER = struct.Struct("<II")
HEADER_SIZE = HEADER.size
MAX_RECORD = (1 << 31) - 1
SEGMENT_SUFFIX = ".seg"
DURABLE_FILE = "durable"
_DURABLE = struct.Struct("<QI4x")


def frame(payload: bytes) -> bytes:
    """The on-disk bytes of one record: header (length, crc32) followed by the payload."""
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def parse_frames(buf: bytes | memoryview, base: int) -> tuple[list[tuple[int, bytes]], int]:
    """Split `buf` (which starts at global offset `base`) into whole, CRC-valid records.

    Returns ([(end_offset, payload), ...], valid_bytes); parsing stops at the first short or
    corrupt frame, so `base + valid_bytes` is where a torn tail starts.
    """
    view = memoryview(buf)
    out: list[tuple[int, bytes]] = []
    pos = 0
    n = len(view)
    while pos + HEADER_SIZE <= n:
        length, crc = HEADER.unpack_from(view, pos)
        end = pos + HEADER_SIZE + length
        if end > n:
            break
        payload = bytes(view[pos + HEADER_SIZE : end])
        if zlib.crc32(payload) != crc:
            break
        out.append((base + end, payload))
        pos = end
    return out, pos


def segment_name(base: int) -> str:
    return f"{base:020d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[int]:
    """Base offsets of the segment files in `directory`, ascending."""
    bases = []
    for name in os.listdir(directory):
        if name.endswith(SEGMENT_SUFFIX) and name[: -len(SEGMENT_SUFFIX)].isdigit():
            bases.append(int(name[: -len(SEGMENT_SUFFIX)]))
    return sorted(bases)


def wakeup_address(directory: Path) -> bytes:
    """Abstract unix-socket name on which the consumer of this log listens for commit wakeups.

    Abstract (Linux) rather than a file in the data dir: no 108-byte path limit, and nothing
    stale left behind by a kill -9.
    """
    digest = hashlib.sha1(str(directory.resolve()).encode()).hexdigest()[:24]
    return b"\0eventlens-log-" + digest.encode()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LogReader:
    """Read-only access to a log directory, safe to use from another process than the writer."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[int, int] = {}

    def durable_end(self) -> int:
        """Offset below which every record is durable (published by the writer after fsync)."""
        path = self.directory / DURABLE_FILE
        for _ in range(100):
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                return 0
            if len(raw) == _DURABLE.size:
                end, crc = _DURABLE.unpack(raw)
                if zlib.crc32(raw[:8]) == crc:
                    return int(end)
            # Caught the writer's 16-byte pwrite half done: read again.
            time.sleep(0.001)
        raise Unavailable(f"ingest log durable-end file {path} is unreadable")

    def first_offset(self) -> int:
        """Offset of the oldest byte still kept (segments before it were dropped)."""
        bases = list_segments(self.directory)
        return bases[0] if bases else 0

    def read(
        self, offset: int, max_bytes: int, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        """Whole records starting exactly at `offset`, as [(end_offset, payload)], up to about
        `max_bytes` of frames (always at least one record if one is available) and never past
        `limit` (default: the durable end).

        Raises ValueError if `offset` is before the oldest kept segment, and Unavailable if a
        record below the limit is corrupt (the disk lost acknowledged data).
        """
        end_limit = self.durable_end() if limit is None else limit
        out: list[tuple[int, bytes]] = []
        taken = 0
        bases = list_segments(self.directory)
        while offset < end_limit and (taken < max_bytes or not out):
            idx = _segment_index(bases, offset)
            if idx < 0:
                raise ValueError(f"offset {offset} is before the oldest log segment")
            base = bases[idx]
            seg_end = bases[idx + 1] if idx + 1 < len(bases) else end_limit
            seg_end = min(seg_end, end_limit)
            if offset >= seg_end:
                break
            fd = self._fd(base)
            want = min(seg_end - offset, max(max_bytes - taken, HEADER_SIZE))
            buf = os.pread(fd, want, offset - base)
            records, valid = parse_frames(buf, offset)
            if not records:
                # The first record is larger than `want`: read exactly it.
                head = os.pread(fd, HEADER_SIZE, offset - base)
                if len(head) < HEADER_SIZE:
                    raise Unavailable(f"ingest log truncated at offset {offset}")
                length = HEADER.unpack(head)[0]
                buf = os.pread(fd, HEADER_SIZE + length, offset - base)
                records, valid = parse_frames(buf, offset)
                if not records:
                    raise Unavailable(
                        f"corrupt ingest log record at offset {offset} in {segment_name(base)}"
                    )
            out.extend(records)
            taken += valid
            offset += valid
        return out

    def drop_segments_before(self, offset: int) -> list[int]:
        """Delete segment files that end at or before `offset` (never the newest segment).

        Returns the base offsets dropped.
        """
        bases = list_segments(self.directory)
        dropped = []
        for base, next_base in itertools.pairwise(bases):
            if next_base > offset:
                break
            fd = self._files.pop(base, None)
            if fd is not None:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.directory / segment_name(base))
            dropped.append(base)
        return dropped

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()

    def _fd(self, base: int) -> int:
        fd = self._files.get(base)
        if fd is None:
            fd = os.open(self.directory / segment_name(base), os.O_RDONLY)
            self._files[base] = fd
        return fd


def _segment_index(bases: list[int], offset: int) -> int:
    """Index of the segment holding `offset` (-1 if before the first)."""
    idx = -1
    for i, base in enumerate(bases):
        if base <= offset:
            idx = i
        else:
            break
    return idx


@dataclass(slots=True)
class _Pending:
    payload: bytes
    loop: asyncio.AbstractEventLoop | None
    afuture: asyncio.Future[int] | None
    cfuture: Future[int] | None
    # The appender's OpenTelemetry context (tracing on only): the writer thread's write+fsync
    # span for this record is its child.
    context: object = None


class IngestLog:
    """The appending side of the log, owned by the server process.

    `append` resolves only after the record is written and fsynced (fdatasync); concurrent
    appends share one write and one fsync (group commit) done by a writer thread. On open, a torn
    or corrupt tail of the newest segment (never acknowledged) is truncated.

    Errors: `Unavailable` if another process holds the log, the log is closed, or a write/fsync
    fails (capture answers 503 and clients retry); `PayloadTooLarge` for a record over 2 GiB.
    """

    def __init__(
        self, directory: Path, *, fsync: bool = True, segment_bytes: int = 64 << 20
    ) -> None:
        self.directory = directory
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        # Group commits done (each one write + one fsync when `fsync`): tests and benches.
        self.fsync_count = 0
        self._sync: Callable[[int], None] = os.fdatasync
        self._cond = threading.Condition()
        self._pending: list[_Pending] = []
        self._closed = False
        self._broken: str | None = None
        self._started = False
        self._thread: threading.Thread | None = None
        self._notify_sock: socket.socket | None = None
        self._wakeup = wakeup_address(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / "writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise Unavailable(
                f"ingest log {directory} is held by another process (is a server running?)"
            ) from None
        self._reader = LogReader(directory)
        self._recover()

    # -- recovery ------------------------------------------------------------------------------

    def _recover(self) -> None:
        bases = list_segments(self.directory)
        if not bases:
            bases = [0]
            self._create_segment(0)
        base = bases[-1]
        path = self.directory / segment_name(base)
        data = path.read_bytes()
        _, valid = parse_frames(data, base)
        fd = os.open(path, os.O_WRONLY)
        if valid < len(data):
            _log.warning(
                "ingest_log.torn_tail_truncated",
                segment=path.name,
                kept_bytes=valid,
                dropped_bytes=len(data) - valid,
            )
            os.ftruncate(fd, valid)
        # The kept tail may have been written but not fsynced before a crash: make it durable
        # before publishing it to the consumer.
        os.fsync(fd)
        os.lseek(fd, valid, os.SEEK_SET)
        self._fd = fd
        self._seg_base = base
        self._seg_size = valid
        self._end = base + valid
        self._durable_fd = os.open(self.directory / DURABLE_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        self._publish(self._end)

    def _create_segment(self, base: int) -> int:
        fd = os.open(
            self.directory / segment_name(base), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644
        )
        _fsync_dir(self.directory)
        return fd

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (appends before start wait until it runs)."""
        with self._cond:
            if self._started:
                return
            self._started = True
        self._notify_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify_sock.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="ingest-log-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Drain pending appends (they still complete), stop the writer, release the log."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        # Appends queued but never started (start() not called) fail rather than hang.
        self._fail(self._pending, Unavailable("ingest log closed"))
        self._pending = []
        for fd in (self._fd, self._durable_fd):
            os.close(fd)
        if self._notify_sock is not None:
            self._notify_sock.close()
        self._reader.close()
        os.close(self._lock_fd)

    # -- appending -----------------------------------------------------------------------------

    async def append(self, payload: bytes) -> int:
        """Append one record; returns its end offset once it is durable."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        self._enqueue(_Pending(payload, loop, fut, None, tracing.current_context()))
        return await fut

    def append_blocking(self, payload: bytes) -> int:
        """`append` for synchronous callers (blocks the calling thread until durable)."""
        fut: Future[int] = Future()
        self._enqueue(_Pending(payload, None, None, fut, tracing.current_context()))
        return fut.result()

    def end_offset(self) -> int:
        """Durable end: every record below this offset survives a crash."""
        return self._end

    def read(self, offset: int, max_bytes: int) -> list[tuple[int, bytes]]:
        """(end_offset, payload) of whole durable records starting at `offset` (see LogReader)."""
        return self._reader.read(offset, max_bytes, limit=self._end)

    def drop_segments_before(self, offset: int) -> None:
        """Retention: delete segments wholly before `offset` (the active one is always kept)."""
        self._reader.drop_segments_before(min(offset, self._seg_base))

    def _enqueue(self, item: _Pending) -> None:
        if len(item.payload) > MAX_RECORD:
            raise PayloadTooLarge(f"log record of {len(item.payload)} bytes is over 2 GiB")
        with self._cond:
            if self._closed:
                raise Unavailable("ingest log is closed (server shutting down)")
            if self._broken is not None:
                raise Unavailable(f"ingest log is unusable after a disk error: {self._broken}")
            self._pending.append(item)
            self._cond.notify()

    # -- writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                group, self._pending = self._pending, []
            try:
                self._commit(group)
            except Exception as exc:
                # A bug, not a disk error (those are handled in _commit): fail loudly rather
                # than leave requests waiting forever, and refuse further appends.
                _log.exception("ingest_log.writer_crashed", error=str(exc))
                self._broken = f"writer crashed: {exc}"
                self._fail(group, Unavailable("ingest log writer failed"))

    def _commit(self, group: list[_Pending]) -> None:
        start = time.perf_counter()
        start_ns = time.time_ns()
        durable_before = self._end
        ends: list[int] = []
        try:
            buf: list[bytes] = []
            buffered = 0
            pos = self._end
            for item in group:
                size = HEADER_SIZE + len(item.payload)
                if self._seg_size + buffered > 0 and self._seg_size + buffered + size > (
                    self.segment_bytes
                ):
                    self._flush(buf, buffered)
                    buf, buffered = [], 0
                    self._roll()
                buf.append(frame(item.payload))
                buffered += size
                pos += size
                ends.append(pos)
            self._flush(buf, buffered)
        except OSError as exc:
            _log.error("ingest_log.write_failed", error=str(exc), durable_end=durable_before)
            self._repair(durable_before)
            self._fail(group, Unavailable(f"could not make events durable: {exc}"))
            if tracing.enabled():
                self._trace(group, start_ns, durable_before, str(exc))
            return
        self.fsync_count += 1
        ingest_fsync_seconds.observe(time.perf_counter() - start)
        ingest_group_size.observe(len(group))
        self._publish(self._end)
        self._succeed(group, ends)
        if tracing.enabled():
            self._trace(group, start_ns, durable_before, None)

    def _trace(self, group: list[_Pending], start_ns: int, offset: int, error: str | None) -> None:
        """One "ingest.log.fsync" span per traced record of a group commit, a child of its
        append span, all spanning the group's one write + fsync (so each capture trace shows
        the disk time it waited for, and how many requests shared it)."""
        end_ns = time.time_ns()
        attributes: tracing.Attributes = {
            "eventlens.group_size": len(group),
            "eventlens.group_bytes": self._end - offset,
            "eventlens.fsync": self.fsync,
        }
        for item in group:
            if item.context is None:
                continue
            span = tracing.start_span_in(
                item.context, "ingest.log.fsync", attributes, start_time=start_ns
            )
            if error is not None:
                span.set_status(tracing.error_status(error))
            span.end(end_time=end_ns)

    def _flush(self, buf: list[bytes], buffered: int) -> None:
        if buffered:
            _write_all(self._fd, b"".join(buf))
            self._seg_size += buffered
        if self.fsync:
            self._sync(self._fd)
        self._end = self._seg_base + self._seg_size

    def _roll(self) -> None:
        new_base = self._seg_base + self._seg_size
        fd = self._create_segment(new_base)
        os.close(self._fd)
        self._fd, self._seg_base, self._seg_size = fd, new_base, 0

    def _repair(self, durable_end: int) -> None:
        """After a failed write/fsync, cut the log back to what is known durable.

        Records past it were never acknowledged; clients retry them. If even this fails the
        log refuses further appends (a restart re-scans and truncates the tail).
        """
        try:
            if durable_end < self._seg_base:
                # Failed mid-group after a roll: drop the new segment, back to the previous one.
                os.close(self._fd)
                os.unlink(self.directory / segment_name(self._seg_base))
                bases = [b for b in list_segments(self.directory) if b <= durable_end]
                self._seg_base = bases[-1]
                self._fd = os.open(self.directory / segment_name(self._seg_base), os.O_WRONLY)
            self._seg_size = durable_end - self._seg_base
            os.ftruncate(self._fd, self._seg_size)
            os.lseek(self._fd, self._seg_size, os.SEEK_SET)
            self._end = durable_end
        except OSError as exc:
            _log.error("ingest_log.repair_failed", error=str(exc))
            self._broken = str(exc)

    def _publish(self, end: int) -> None:
        raw = struct.pack("<Q", end)
        os.pwrite(self._durable_fd, _DURABLE.pack(end, zlib.crc32(raw)), 0)
        if self._notify_sock is not None:
            # Best effort: no listener (consumer down) or a full queue just means it polls.
            with contextlib.suppress(OSError):
                self._notify_sock.sendto(raw, self._wakeup)

    def _succeed(self, group: list[_Pending], ends: list[int]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], int]]] = {}
        for item, end in zip(group, ends, strict=True):
            if item.cfuture is not None:
                item.cfuture.set_result(end)
            elif item.loop is not None and item.afuture is not None:
                by_loop.setdefault(item.loop, []).append((item.afuture, end))
        # One cross-thread wakeup per event loop, not per request.
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled, None)

    def _fail(self, group: list[_Pending], exc: Exception) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], int]]] = {}
        for item in group:
            if item.cfuture is not None:
                item.cfuture.set_exception(exc)
            elif item.loop is not None and item.afuture is not None:
                by_loop.setdefault(item.loop, []).append((item.afuture, 0))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled, exc)


def _settle(settled: list[tuple[asyncio.Future[int], int]], exc: Exception | None) -> None:
    for fut, end in settled:
        if fut.done():  # the request was cancelled (client went away)
            continue
        if exc is None:
            fut.set_result(end)
        else:
            fut.set_exception(exc)


def write_durable_end(directory: Path, end: int) -> None:
    """Write the durable-end file of a log directory that no writer holds (a restored backup):
    readers may read up to `end`."""
    raw = struct.pack("<Q", end)
    (directory / DURABLE_FILE).write_bytes(_DURABLE.pack(end, zlib.crc32(raw)))
