"""Keeps the ingest consumer process running next to the server.

The child stays in the server's process group, so a kill of the group (`kill -9 -PGID`) reaches
both; the child ignores SIGINT, so on Ctrl-C the server shuts down first and then stops it.
A child that dies is restarted with exponential backoff (0.5 s doubling to 10 s, reset after
30 s of healthy running). `close()` sends SIGTERM, waits for the batch in hand to finish, then
SIGKILLs.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

from eventlens.capture.model import decode_log_record
from eventlens.config import Settings
from eventlens.ingest.consumer import read_status, write_exit
from eventlens.ingest.log import LogReader
from eventlens.observability.logging import get_logger
from eventlens.observability.metrics import (
    consumer_lag_bytes,
    consumer_lag_seconds,
    consumer_restarts,
    ingest_freshness,
    ingest_quarantined,
)

_log = get_logger(__name__)

BACKOFF_START = 0.5
BACKOFF_MAX = 10.0
HEALTHY_AFTER = 30.0


class ConsumerSupervisor:
    """Spawn, watch and restart `python -m eventlens.ingest.consumer_main --data-dir D`."""

    def __init__(self, settings: Settings, *, stop_timeout: float = 15.0) -> None:
        self.settings = settings
        self.stop_timeout = stop_timeout
        self.restarts = 0
        # Monotonic times of the child's deaths and its last exit code, for health checks.
        self.deaths: list[float] = []
        self.last_returncode: int | None = None
        self._quarantined_seen: dict[int, int] = {}
        self._freshness_seen: dict[int, tuple[list[int], float]] = {}
        self._reader = LogReader(settings.log_dir)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """Pid of the running consumer child, None between restarts."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def watching(self) -> bool:
        """True while the supervisor thread runs (it restarts a dead child)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="consumer-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "eventlens.ingest.consumer_main",
                    "--data-dir",
                    str(self.settings.data_dir),
                ],
                stdin=subprocess.DEVNULL,
            )
        _log.info("consumer.spawned", pid=self._proc.pid)

    def _watch(self) -> None:
        backoff = BACKOFF_START
        while not self._stop.is_set():
            proc = self._proc
            assert proc is not None
            started = time.monotonic()
            while proc.poll() is None and not self._stop.is_set():
                self._update_lag()
                self._stop.wait(1.0)
            if self._stop.is_set():
                return
            if time.monotonic() - started > HEALTHY_AFTER:
                backoff = BACKOFF_START
            self._update_lag()
            self.last_returncode = proc.returncode
            self.deaths = [*self.deaths[-99:], time.monotonic()]
            try:
                write_exit(self.settings, proc.pid, proc.returncode)
            except OSError as exc:
                _log.warning("consumer.exit_record_failed", error=str(exc))
            _log.error("consumer.died", pid=proc.pid, returncode=proc.returncode, retry_in=backoff)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, BACKOFF_MAX)
            self.restarts += 1
            consumer_restarts.inc()
            self._spawn()

    def _update_lag(self) -> None:
        status = read_status(self.settings)
        if status is None:
            return
        consumer_lag_bytes.set(status.get("lag_bytes", 0))
        consumer_lag_seconds.set(self._lag_seconds(status))
        self._add_freshness(status)
        # Each consumer process counts its own quarantines: add what this one did since the
        # last look to the server's counter.
        pid, count = int(status.get("pid", 0)), int(status.get("quarantined", 0) or 0)
        seen = self._quarantined_seen.get(pid, 0)
        if count > seen:
            ingest_quarantined.inc(count - seen)
            self._quarantined_seen = {pid: count}

    def _lag_seconds(self, status: dict[str, Any]) -> float:
        """Age of the oldest acknowledged event not yet applied. The status may be stale (a
        stuck or dead consumer writes none), so events acknowledged since its checkpoint are
        looked up in the log itself: a stalled consumer shows as a growing lag."""
        now = time.time()
        checkpoint = int(status.get("checkpoint", 0) or 0)
        try:
            end = self._reader.durable_end()
            if end <= checkpoint:
                return 0.0
            first = self._reader.read(checkpoint, 1, limit=end)
        except Exception:  # a segment dropped under us, a torn read: keep the status's word
            first = []
        if first:
            return max(0.0, now - decode_log_record(first[0][1])[1] / 1e6)
        age = float(status.get("oldest_unapplied_age_s", 0) or 0)
        if int(status.get("lag_bytes", 0) or 0) > 0:
            age += max(0.0, now - float(status.get("heartbeat_at", now)))
        return age

    def _add_freshness(self, status: dict[str, Any]) -> None:
        """Add what this consumer process counted since the last look to the histogram."""
        fresh = status.get("freshness")
        if not isinstance(fresh, dict):
            return
        pid = int(status.get("pid", 0))
        counts = [int(n) for n in fresh.get("counts", [])]
        total = float(fresh.get("sum", 0.0))
        seen_counts, seen_sum = self._freshness_seen.get(pid, ([0] * len(counts), 0.0))
        if len(seen_counts) != len(counts) or counts == seen_counts:
            return
        try:
            ingest_freshness.add(
                [a - b for a, b in zip(counts, seen_counts, strict=True)], total - seen_sum
            )
        except ValueError:
            return  # a consumer of another version with other buckets: not comparable
        self._freshness_seen = {pid: (counts, total)}

    def close(self) -> None:
        """Stop the consumer: SIGTERM, wait up to stop_timeout, then SIGKILL."""
        with self._lock:
            self._stop.set()
            proc = self._proc
        if self._thread is not None:
            self._thread.join()
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            _log.warning("consumer.kill", pid=proc.pid)
            proc.kill()
            proc.wait()
