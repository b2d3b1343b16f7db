"""What `/_health` and `/_ready` report about ingest: the consumer, its lag, the disk.

Readiness fails (503) when any check fails; liveness fails only when the consumer is dead
and nothing will restart it (docs/operations.md, "Health").
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from eventlens.config import Settings
from eventlens.ingest.consumer import read_status

# A consumer that wrote no status for this long is stuck (it writes one every second when idle
# and after every commit; one commit of a full batch takes a few seconds).
HEARTBEAT_STALE_SECONDS = 60.0
# This many deaths of the consumer within CRASH_LOOP_WINDOW seconds is a crash loop.
CRASH_LOOP_DEATHS = 3
CRASH_LOOP_WINDOW = 120.0
# Time a freshly started consumer has to write its first status.
STARTUP_GRACE_SECONDS = 30.0


@dataclass
class Health:
    live: bool = True
    ready: bool = True
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    def fail(self, check: str, reason: str, *, live: bool = True) -> None:
        self.ready = False
        self.live = self.live and live
        self.reasons.append(reason)
        self.checks[check]["ok"] = False
        self.checks[check]["reason"] = reason

    def body(self) -> dict[str, Any]:
        status = "ok" if self.ready else ("degraded" if self.live else "failing")
        return {
            "status": status,
            "ready": self.ready,
            "reasons": self.reasons,
            "checks": self.checks,
        }


def check(settings: Settings, supervisor: Any, started_at: float) -> Health:
    """Evaluate the consumer (`supervisor`: the ConsumerSupervisor, or None when not started),
    the ingest lag and the free disk space of the data directory."""
    h = Health()
    _consumer(h, settings, supervisor, started_at)
    _disk(h, settings)
    return h


def _consumer(h: Health, settings: Settings, supervisor: Any, started_at: float) -> None:
    now = time.time()
    status = read_status(settings)
    h.checks["consumer"] = {"ok": True}
    h.checks["lag"] = {"ok": True, "max_seconds": settings.ready_max_lag_seconds}
    if supervisor is None or not supervisor.watching:
        h.fail("consumer", "the ingest consumer is not running and nothing restarts it", live=False)
        return
    c = h.checks["consumer"]
    c["pid"] = supervisor.pid
    c["restarts"] = supervisor.restarts
    recent = [t for t in supervisor.deaths if time.monotonic() - t <= CRASH_LOOP_WINDOW]
    if status is not None:
        c["heartbeat_age_s"] = round(now - float(status.get("heartbeat_at", 0)), 3)
        c["quarantined"] = status.get("quarantined", 0)
        if status.get("error"):
            c["last_error"] = status["error"]
    if len(recent) >= CRASH_LOOP_DEATHS:
        last = c.get("last_error") or f"exit code {supervisor.last_returncode}"
        h.fail(
            "consumer",
            f"the ingest consumer is crash-looping: {len(recent)} deaths in the last "
            f"{CRASH_LOOP_WINDOW:.0f} s (last: {last})",
        )
    elif supervisor.pid is None:
        h.fail("consumer", "the ingest consumer is down (waiting to be restarted)")
    elif status is None or float(status.get("started_at", 0)) < started_at:
        if now - started_at > STARTUP_GRACE_SECONDS:
            h.fail("consumer", "the ingest consumer has not reported since the server started")
        else:
            h.fail("consumer", "the ingest consumer is starting")
    elif c["heartbeat_age_s"] > HEARTBEAT_STALE_SECONDS:
        h.fail(
            "consumer", f"the ingest consumer's last heartbeat is {c['heartbeat_age_s']:.0f} s old"
        )
    if status is not None:
        age = float(status.get("oldest_unapplied_age_s", 0) or 0)
        if int(status.get("lag_bytes", 0) or 0) > 0:
            # The status is as old as its heartbeat: the oldest pending event aged since.
            age += max(0.0, now - float(status.get("heartbeat_at", now)))
        h.checks["lag"].update(seconds=round(age, 3), bytes=status.get("lag_bytes", 0))
        if age > settings.ready_max_lag_seconds:
            h.fail(
                "lag",
                f"ingest lag {age:.1f} s is above ready_max_lag_seconds "
                f"({settings.ready_max_lag_seconds:g} s)",
            )


def _disk(h: Health, settings: Settings) -> None:
    usage = shutil.disk_usage(settings.data_dir)
    free_mb = usage.free / 2**20
    h.checks["disk"] = {
        "ok": True,
        "free_mb": round(free_mb, 1),
        "min_free_mb": settings.min_free_disk_mb,
    }
    if free_mb < settings.min_free_disk_mb:
        h.fail(
            "disk",
            f"free disk space of {settings.data_dir} is {free_mb:.0f} MiB, below "
            f"min_free_disk_mb ({settings.min_free_disk_mb} MiB)",
        )
