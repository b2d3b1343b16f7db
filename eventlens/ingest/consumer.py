"""The ingest consumer: moves durable log records into the per-project event tables.

Runs in its own process (`python -m eventlens.ingest.consumer_main`), started and restarted by
the server's supervisor. It is event-driven: the log writer sends a datagram after every group
commit; a 1 s poll of the published durable end is the fallback. Commits happen at most every
`settings.commit_interval` seconds (or sooner when `max_batch_bytes` is pending), so freshness is
about commit_interval + one table commit.

Exactly-once: `ProjectWriter.apply` is idempotent by log offset (and by uuid), so after a crash
the consumer simply resumes from its checkpoint, which only ever trails what the tables hold.
See docs/adr/0001-ingest-log-and-consumer.md.

Files in `<data_dir>/consumer/`: `checkpoint.json` (fsync'd, atomically renamed), `status.json`
(heartbeat, pid, lag; atomically replaced, read by the server and `eventlens status`), `lock`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import orjson
from opentelemetry.trace import Link

from eventlens.capture.model import decode_log_record, decode_log_record_traced
from eventlens.config import Settings
from eventlens.errors import Unavailable
from eventlens.ingest.log import LogReader, wakeup_address
from eventlens.observability import metrics, tracing
from eventlens.observability.logging import get_logger
from eventlens.storage.event_table import is_commit_conflict

_log = get_logger(__name__)

HEARTBEAT_SECONDS = 1.0
# How often each project's writer gets a maintain() call (compaction, person rewrites).
MAINTAIN_SECONDS = 10.0


class Writer(Protocol):
    """What the consumer needs from eventlens.ingest.project_writer.ProjectWriter."""

    def applied_offset(self) -> int: ...
    def apply(self, records: list[Any]) -> int | None: ...
    def maintain(self) -> None: ...
    def quarantine(self, record: Any, reason: str) -> int: ...
    def close(self) -> None: ...


WriterFactory = Callable[[Settings, int], Writer]

# A record is quarantined after failing this many times the same way (or crashing the consumer
# process this many times); MAX_TRIES bounds retries of a record failing a different way each time.
QUARANTINE_AFTER = 2
MAX_TRIES = 3
ATTEMPT_FILE = "attempt.json"
CRASHES_FILE = "crashes.json"
EXIT_FILE = "exit.json"
_EXTERNAL_SIGNALS = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def is_environment_error(exc: BaseException) -> bool:
    """Failures of the machine, not of a record (disk full, I/O, locks, a commit conflict):
    retried by restarting, never quarantined — a full disk fails every record the same way."""
    return isinstance(exc, OSError | MemoryError | sqlite3.OperationalError) or is_commit_conflict(
        exc
    )


def _describe(exc: BaseException) -> str:
    """`Type: message` of an exception, bounded (it becomes a dead letter's reason)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _decode(end_offset: int, payload: bytes) -> tuple[int, Any]:
    from eventlens.ingest.project_writer import LogRecord

    project_id, received_at, evs, dls, traceparent = decode_log_record_traced(payload)
    return project_id, LogRecord(end_offset, received_at, evs, dls, traceparent)


def _capture_links(batches: dict[int, list[Any]]) -> list[Link]:
    """Span links to the capture requests whose records this commit applies (the SDK keeps
    the first OTEL_SPAN_LINK_COUNT_LIMIT, 128 by default)."""
    links = []
    for batch in batches.values():
        for rec in batch:
            link = tracing.link_to(rec.traceparent, {"eventlens.log_offset": rec.end_offset})
            if link is not None:
                links.append(link)
    return links


def _dead_letter(reason: str, payload: Any) -> Any:
    from eventlens.capture.model import DeadLetter

    return DeadLetter(0, reason, payload)


def write_exit(settings: Settings, pid: int, returncode: int) -> None:
    """Record how a consumer process ended (the supervisor calls this when its child dies);
    the next consumer reads it to tell a crash from an operator's kill."""
    info = {"pid": pid, "returncode": returncode, "at": time.time()}
    _atomic_write(consumer_dir(settings) / EXIT_FILE, orjson.dumps(info), durable=False)


def consumer_dir(settings: Settings) -> Path:
    return settings.data_dir / "consumer"


def read_status(settings: Settings) -> dict[str, Any] | None:
    """The consumer's last status.json (None if it never ran). Keys: pid, heartbeat_at (unix s),
    checkpoint, log_end, lag_bytes, oldest_unapplied_age_s, commits, projects, error, ..."""
    try:
        status: dict[str, Any] = orjson.loads((consumer_dir(settings) / "status.json").read_bytes())
    except FileNotFoundError:
        return None
    return status


def _atomic_write(path: Path, data: bytes, *, durable: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _syncfs(path: Path) -> None:
    """Flush every dirty page of the filesystem holding `path` (Linux syncfs; else sync)."""
    libc = ctypes.CDLL(None, use_errno=True)
    syncfs = getattr(libc, "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs({path}) failed: {os.strerror(err)}")
    finally:
        os.close(fd)


def _default_factory(settings: Settings, project_id: int) -> Writer:
    from eventlens.ingest.project_writer import ProjectWriter

    writer: Writer = ProjectWriter(settings, project_id)
    return writer


class Consumer:
    """One consumer over `settings.data_dir`. Use `run(should_stop)` from a process's main."""

    def __init__(
        self,
        settings: Settings,
        *,
        writer_factory: WriterFactory | None = None,
        max_batch_bytes: int = 32 << 20,
        lock_timeout: float = 10.0,
    ) -> None:
        self.settings = settings
        self.max_batch_bytes = max_batch_bytes
        self._factory = writer_factory or _default_factory
        self._dir = consumer_dir(settings)
        self._dir.mkdir(parents=True, exist_ok=True)
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._take_lock(lock_timeout)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(wakeup_address(settings.log_dir))
        except OSError:
            # Someone else is bound (a dying predecessor): polling still works.
            _log.warning("consumer.wakeup_bind_failed")
        self.reader = LogReader(settings.log_dir)
        self.writers: dict[int, Writer] = {}
        self._maintained: dict[int, float] = {}
        self.offset = max(self._load_checkpoint(), self.reader.first_offset())
        self.started_at = time.time()
        self.commits = 0
        self.events_applied = 0
        self.last_commit_at: float | None = None
        self.last_commit_seconds: float | None = None
        self.last_batch: dict[str, int] = {}
        self.error: str | None = None
        self.quarantined = 0
        # Ack-to-commit seconds of every applied event, as per-bucket counts of the freshness
        # histogram (the server adds them to eventlens_ingest_freshness_seconds).
        self.freshness_counts = [0] * (len(metrics.FRESHNESS_BUCKETS) + 1)
        self.freshness_sum = 0.0
        self._crashes = self._load_crashes()
        self._last_commit_mono = 0.0
        self._last_status = 0.0

    def _take_lock(self, timeout: float) -> int:
        fd = os.open(self._dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise Unavailable(
                        f"another ingest consumer holds {self._dir / 'lock'}"
                    ) from None
                time.sleep(0.1)

    # -- checkpoint ----------------------------------------------------------------------------

    def _load_checkpoint(self) -> int:
        try:
            return int(orjson.loads((self._dir / "checkpoint.json").read_bytes())["offset"])
        except FileNotFoundError:
            return 0

    def _save_checkpoint(self, offset: int) -> None:
        _atomic_write(self._dir / "checkpoint.json", orjson.dumps({"offset": offset}), durable=True)

    # -- main loop -----------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Consume until `should_stop()` (checked between batches and at least every second)."""
        end = self.reader.durable_end()
        if self.offset > end:
            raise Unavailable(
                f"consumer checkpoint {self.offset} is past the ingest log end {end}: "
                "the log lost data that was already applied"
            )
        _log.info("consumer.start", pid=os.getpid(), checkpoint=self.offset, log_end=end)
        self.write_status(end)
        while not should_stop():
            end = self.reader.durable_end()
            if end > self.offset:
                # Rate-limit commits: gather up to commit_interval after the previous one.
                wait = self._last_commit_mono + self.settings.commit_interval - time.monotonic()
                if wait > 0 and end - self.offset < self.max_batch_bytes:
                    # Sleep rather than listen: under load every group commit sends a wakeup,
                    # and waking for each would burn the core capture needs.
                    time.sleep(min(wait, 0.5))
                    if time.monotonic() - self._last_status >= HEARTBEAT_SECONDS:
                        self.write_status(end)  # keeps the lag health sees current
                    continue
                self.step()
                self._maintain_one()
                continue
            if not self._maintain_one():
                if time.monotonic() - self._last_status >= HEARTBEAT_SECONDS:
                    self.write_status(end)
                self._wait(HEARTBEAT_SECONDS)

    def wake(self) -> None:
        """Interrupt a wait (e.g. from a signal handler) by sending ourselves a datagram."""
        with contextlib.suppress(OSError):
            self._sock.sendto(b"", wakeup_address(self.settings.log_dir))

    def _wait(self, timeout: float) -> None:
        """Block until a commit wakeup (or `timeout` seconds)."""
        self._sock.settimeout(max(timeout, 0.001))
        with contextlib.suppress(TimeoutError):
            self._sock.recv(64)

    def _drain(self) -> None:
        """Discard queued wakeups: the batch about to be read covers every commit so far."""
        self._sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self._sock.recv(64)

    def step(self) -> int:
        """Apply one batch (up to max_batch_bytes) of durable records; returns records applied.

        Each project's records of the batch are applied in one go. When that raises an error of
        the data (not of the environment, see `is_environment_error`), or crashed the previous
        process, that project's records are applied one by one; a record that fails
        `QUARANTINE_AFTER` times the same way (or crashes the process that many times when
        applied on its own) is quarantined to its project's dead letters.
        """
        start = time.perf_counter()
        self._drain()
        end_limit = self.reader.durable_end()
        records = self.reader.read(self.offset, self.max_batch_bytes, limit=end_limit)
        if not records:
            return 0
        if not tracing.enabled():
            return self._commit(records, start, end_limit)
        # Decoded twice when traced (here for the links, then to apply): tracing on is the
        # diagnostic mode; off, nothing here runs.
        batches: dict[int, list[Any]] = {}
        for end_offset, payload in records:
            with contextlib.suppress(Exception):
                project_id, rec = _decode(end_offset, payload)
                batches.setdefault(project_id, []).append(rec)
        attributes: tracing.Attributes = {
            "eventlens.records": len(records),
            "eventlens.log_offset": self.offset,
        }
        with tracing.span("ingest.consumer.commit", attributes, links=_capture_links(batches)):
            return self._commit(records, start, end_limit)

    def _commit(self, records: list[tuple[int, bytes]], start: float, end_limit: int) -> int:
        """`step` after the read: apply, make durable, move the checkpoint."""
        by_project: dict[int, list[Any]] = {}
        received: list[tuple[int, int]] = []  # (received_at µs, events) of each record
        events = dead = 0
        for end_offset, payload in records:
            try:
                project_id, rec = _decode(end_offset, payload)
            except Exception as exc:
                self._quarantine_undecodable(end_offset, payload, exc)
                continue
            by_project.setdefault(project_id, []).append(rec)
            received.append((rec.received_at, len(rec.events)))
            events += len(rec.events)
            dead += len(rec.dead)
        # Projects whose records crashed a previous process go last: the others land first.
        crashed = set(self._crashes.get("projects", []))
        for project_id in sorted(by_project, key=lambda p: (p in crashed, p)):
            batch = by_project[project_id]
            with tracing.span(
                "ingest.consumer.apply",
                {"eventlens.project_id": project_id, "eventlens.records": len(batch)},
            ):
                self._apply_project(project_id, batch)
        new_offset = records[-1][0]
        if self.settings.fsync:
            # Delta files and the SQLite WAL are written without fsync; the log segments we are
            # about to drop are the only other copy, so make the tables durable first.
            with tracing.span("ingest.consumer.syncfs"):
                _syncfs(self.settings.data_dir)
        # The tables now hold everything below new_offset: only then may the checkpoint move.
        self._save_checkpoint(new_offset)
        self.offset = new_offset
        self._clear_attempt()
        with contextlib.suppress(ValueError):
            self.reader.drop_segments_before(new_offset)
        self._observe_freshness(received)
        self.commits += 1
        self.events_applied += events
        self.last_commit_at = time.time()
        self.last_commit_seconds = time.perf_counter() - start
        self._last_commit_mono = time.monotonic()
        self.last_batch = {
            "records": len(records),
            "events": events,
            "dead": dead,
            "projects": len(by_project),
        }
        self.write_status(end_limit)
        return len(records)

    # -- poison records ------------------------------------------------------------------------

    def _apply_project(self, project_id: int, batch: list[Any]) -> None:
        """One project's records of the batch in one go, or record by record when that failed
        with an error of the data, or crashed the previous process."""
        crashed = self._crashes.get("projects", [])
        if project_id not in crashed:
            self._mark_attempt(record=None, project=project_id)
            try:
                self._writer(project_id).apply(batch)
                return
            except Exception as exc:
                if is_environment_error(exc):
                    raise
                _log.warning(
                    "consumer.batch_failed",
                    project_id=project_id,
                    offset=self.offset,
                    error=_describe(exc),
                )
                self._drop_writer(project_id)
        for rec in batch:
            self._apply_one(project_id, rec)

    def _apply_one(self, project_id: int, rec: Any) -> None:
        crashed = int(self._crashes.get("records", {}).get(str(rec.end_offset), 0))
        if crashed >= QUARANTINE_AFTER:
            signal_name = self._crashes.get("signal", "a crash")
            self._quarantine(
                project_id,
                rec,
                f"the ingest consumer process died ({signal_name}) applying this record "
                f"{crashed} times",
            )
            return
        errors: list[str] = []
        for _ in range(MAX_TRIES):
            self._mark_attempt(record=rec.end_offset, project=project_id)
            try:
                self._writer(project_id).apply([rec])
                return
            except Exception as exc:
                if is_environment_error(exc):
                    raise
                errors.append(_describe(exc))
                _log.warning(
                    "consumer.record_failed",
                    project_id=project_id,
                    offset=rec.end_offset,
                    error=errors[-1],
                )
                # A fresh writer for the retry: the failure may have left its caches behind.
                self._drop_writer(project_id)
                if errors.count(errors[-1]) >= QUARANTINE_AFTER:
                    break
        self._quarantine(project_id, rec, errors[-1])

    def _quarantine(self, project_id: int, rec: Any, error: str) -> None:
        reason = f"quarantined by the ingest consumer: {error}"
        writer = self._writer(project_id)
        if rec.end_offset <= writer.applied_offset():
            return  # applied (or quarantined) before the process that crashed died
        added = writer.quarantine(rec, reason)
        self.quarantined += 1
        _log.error(
            "consumer.quarantined",
            project_id=project_id,
            offset=rec.end_offset,
            events=len(rec.events),
            dead_letters=added,
            error=error,
        )

    def _quarantine_undecodable(self, end_offset: int, payload: bytes, exc: Exception) -> None:
        """A record that does not decode: to its project's dead letters if the project can be
        read from it, else kept as a file in the consumer directory (and logged)."""
        from eventlens.ingest.project_writer import LogRecord

        error = _describe(exc)
        project_id: int | None = None
        raw: Any = payload.decode("utf-8", "replace")
        with contextlib.suppress(Exception):
            raw = orjson.loads(payload)
            project_id = int(raw["project_id"])
        if project_id is not None:
            rec = LogRecord(end_offset, time.time_ns() // 1000, [], [])
            rec.dead.append(_dead_letter(f"quarantined by the ingest consumer: {error}", raw))
            self._quarantine(project_id, rec, error)
            return
        qdir = self._dir / "quarantine"
        qdir.mkdir(exist_ok=True)
        _atomic_write(qdir / f"{end_offset}.record", payload, durable=True)
        self.quarantined += 1
        _log.error("consumer.quarantined", project_id=None, offset=end_offset, error=error)

    def _mark_attempt(self, *, record: int | None, project: int | None) -> None:
        """Note what is about to be applied, so a restart after a crash here knows (not fsync'd:
        it only has to survive the process, and losing it merely costs one more try)."""
        mark = {"pid": os.getpid(), "offset": self.offset, "record": record, "project": project}
        _atomic_write(self._dir / ATTEMPT_FILE, orjson.dumps(mark), durable=False)

    def _clear_attempt(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._dir / ATTEMPT_FILE)
        if self._crashes:
            self._crashes = {}
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._dir / CRASHES_FILE)

    def _load_crashes(self) -> dict[str, Any]:
        """Crash counts at the checkpoint's batch, updated with how the previous process ended:
        only a death by a crash signal (SIGSEGV, SIGABRT, ...) while it applied a batch counts;
        SIGKILL/SIGTERM/SIGINT are an operator or a power cut, and an error exit has been
        classified (environment errors are retried, not counted)."""
        try:
            crashes: dict[str, Any] = orjson.loads((self._dir / CRASHES_FILE).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            crashes = {}
        if crashes.get("batch_offset") != self.offset:
            crashes = {}
        try:
            mark = orjson.loads((self._dir / ATTEMPT_FILE).read_bytes())
            exit_info = orjson.loads((self._dir / EXIT_FILE).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return crashes
        code = int(exit_info.get("returncode", 0))
        if (
            mark.get("offset") != self.offset
            or exit_info.get("pid") != mark.get("pid")
            or code >= 0
            or -code in _EXTERNAL_SIGNALS
        ):
            return crashes
        crashes = {**crashes, "batch_offset": self.offset, "signal": _signal_name(-code)}
        if mark.get("project") is not None:
            crashes["projects"] = sorted({*crashes.get("projects", []), int(mark["project"])})
        if mark.get("record") is not None:
            counts = dict(crashes.get("records", {}))
            key = str(mark["record"])
            counts[key] = int(counts.get(key, 0)) + 1
            crashes["records"] = counts
        _log.warning("consumer.crash_detected", offset=self.offset, mark=mark, exit=exit_info)
        _atomic_write(self._dir / CRASHES_FILE, orjson.dumps(crashes), durable=True)
        # The mark has been counted: a later restart without a new crash must not count it again.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._dir / ATTEMPT_FILE)
        return crashes

    def _drop_writer(self, project_id: int) -> None:
        writer = self.writers.pop(project_id, None)
        self._maintained.pop(project_id, None)
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()

    def _writer(self, project_id: int) -> Writer:
        writer = self.writers.get(project_id)
        if writer is None:
            writer = self._factory(self.settings, project_id)
            self.writers[project_id] = writer
            self._maintained[project_id] = time.monotonic()
        return writer

    def _maintain_one(self) -> bool:
        """Run maintain() of the project that waited longest, if its turn came; True if ran."""
        if not self._maintained:
            return False
        project_id = min(self._maintained, key=self._maintained.__getitem__)
        if time.monotonic() - self._maintained[project_id] < MAINTAIN_SECONDS:
            return False
        try:
            self.writers[project_id].maintain()
        except Exception as exc:
            # Maintenance is an optimisation: keep ingesting, retry at the next turn.
            _log.exception("consumer.maintain_failed", project_id=project_id, error=str(exc))
        finally:
            self._maintained[project_id] = time.monotonic()
        return True

    def _observe_freshness(self, received: list[tuple[int, int]]) -> None:
        """Count each event of the batch just made durable in its ack-to-commit bucket."""
        now = time.time()
        for received_at, n in received:
            age = max(0.0, now - received_at / 1e6)
            self.freshness_counts[metrics.ingest_freshness.bucket_index(age)] += n
            self.freshness_sum += age * n

    # -- status --------------------------------------------------------------------------------

    def write_status(self, log_end: int | None = None) -> None:
        """Replace status.json: heartbeat, pid, checkpoint, lag (bytes, seconds), last batch."""
        end = self.reader.durable_end() if log_end is None else log_end
        age = 0.0
        if end > self.offset:
            with contextlib.suppress(Exception):
                first = self.reader.read(self.offset, 1, limit=end)
                if first:
                    received_at = decode_log_record(first[0][1])[1]
                    age = max(0.0, time.time() - received_at / 1e6)
        status = {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "heartbeat_at": time.time(),
            "checkpoint": self.offset,
            "log_end": end,
            "lag_bytes": max(0, end - self.offset),
            "oldest_unapplied_age_s": round(age, 3),
            "commits": self.commits,
            "events_applied": self.events_applied,
            "last_commit_at": self.last_commit_at,
            "last_commit_seconds": self.last_commit_seconds,
            "last_batch": self.last_batch,
            "projects": sorted(self.writers),
            "error": self.error,
            "quarantined": self.quarantined,
            "freshness": {"counts": self.freshness_counts, "sum": self.freshness_sum},
        }
        _atomic_write(self._dir / "status.json", orjson.dumps(status), durable=False)
        self._last_status = time.monotonic()

    def close(self) -> None:
        for writer in self.writers.values():
            with contextlib.suppress(Exception):
                writer.close()
        self.writers.clear()
        self.reader.close()
        self._sock.close()
        os.close(self._lock_fd)
