"""`eventlens backup` / `eventlens restore`: a consistent copy of a data directory, taken while
the server runs (docs/operations.md, "Backup and restore").

Consistency: every project's writer lock is held for the whole copy, so the consumer (and
imports) cannot write a table or a state database meanwhile; capture goes on appending to the
ingest log. Per project, the state database (SQLite backup API) and the Delta table are then
at the same log offset. The consumer checkpoint is read after the locks are taken, so it is at
or below every project's offset, and the log is copied from there to its durable end (after the
tables, so the end is at or above every project's offset): a restored directory replays the log
from the checkpoint and the exactly-once protocol skips what the tables already hold. Events
acknowledged after the log was copied are not in the backup.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from eventlens.config import Settings
from eventlens.errors import InvalidInput, NotFound
from eventlens.ingest.consumer import consumer_dir
from eventlens.ingest.log import LogReader, list_segments, segment_name, write_durable_end
from eventlens.ingest.project_writer import writer_lock
from eventlens.storage import format as data_format

MANIFEST = "BACKUP.json"
_SQLITE_FILES = ("meta.db", "shadow.db")
_SKIP_IN_PROJECT = {"state.db", "state.db-wal", "state.db-shm", "state.db-journal", "writer.lock"}


@dataclass
class BackupReport:
    path: Path
    projects: list[int] = field(default_factory=list)
    checkpoint: int = 0
    log_end: int = 0
    log_bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "projects": self.projects,
            "checkpoint": self.checkpoint,
            "log_end": self.log_end,
            "log_bytes": self.log_bytes,
            "seconds": round(self.seconds, 3),
        }


def _sqlite_copy(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite database (the backup API, not a file copy)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(src)  # reads only: backup() copies pages under a read lock
    try:
        target = sqlite3.connect(dst)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def _project_ids(settings: Settings) -> list[int]:
    root = settings.data_dir / "projects"
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit() and p.is_dir())


def _copy_project(settings: Settings, project_id: int, dest: Path) -> None:
    src = settings.project_dir(project_id)
    out = dest / "projects" / str(project_id)
    out.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name in _SKIP_IN_PROJECT:
            continue
        if entry.is_dir():
            shutil.copytree(entry, out / entry.name)
        else:
            shutil.copy2(entry, out / entry.name)
    if (src / "state.db").exists():
        _sqlite_copy(src / "state.db", out / "state.db")


def _copy_log(settings: Settings, checkpoint: int, dest: Path) -> tuple[int, int]:
    """Copy the log from the segment holding `checkpoint` to the durable end; (end, bytes)."""
    out = dest / "log"
    out.mkdir(parents=True)
    end = LogReader(settings.log_dir).durable_end()
    bases = [b for b in list_segments(settings.log_dir) if b < end]
    keep = [b for i, b in enumerate(bases) if i + 1 == len(bases) or bases[i + 1] > checkpoint]
    copied = 0
    for base in keep:
        try:
            with open(settings.log_dir / segment_name(base), "rb") as f:
                data = f.read(end - base)
        except FileNotFoundError:
            continue  # dropped by the consumer: below its checkpoint, so in the tables
        (out / segment_name(base)).write_bytes(data)
        copied += len(data)
    write_durable_end(out, end)
    return end, copied


def backup(settings: Settings, dest: Path) -> BackupReport:
    """Copy `settings.data_dir` to `dest` (which must not exist, or be empty)."""
    started = time.perf_counter()
    src = settings.data_dir
    if not (src / "meta.db").exists():
        raise NotFound(f"{src} is not an EventLens data directory (no meta.db)")
    if dest.exists() and any(dest.iterdir()):
        raise InvalidInput(f"backup destination {dest} is not empty", field="--out")
    dest.mkdir(parents=True, exist_ok=True)
    report = BackupReport(dest)
    with ExitStack() as locks:
        report.projects = _project_ids(settings)
        for project_id in report.projects:
            locks.enter_context(writer_lock(settings, project_id))
        try:
            checkpoint = int(
                orjson.loads((consumer_dir(settings) / "checkpoint.json").read_bytes())["offset"]
            )
        except FileNotFoundError:
            checkpoint = 0
        report.checkpoint = checkpoint
        for project_id in report.projects:
            _copy_project(settings, project_id, dest)
        for name in _SQLITE_FILES:
            if (src / name).exists():
                _sqlite_copy(src / name, dest / name)
        report.log_end, report.log_bytes = _copy_log(settings, checkpoint, dest)
    (dest / "consumer").mkdir()
    (dest / "consumer" / "checkpoint.json").write_bytes(orjson.dumps({"offset": checkpoint}))
    version = data_format.read_version(src) or data_format.FORMAT_VERSION
    data_format.write_version(dest, version)
    report.seconds = time.perf_counter() - started
    manifest = {**report.to_dict(), "format": version, "created_at": time.time()}
    (dest / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    _fsync_tree(dest)
    return report


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def restore(source: Path, data_dir: Path) -> dict[str, Any]:
    """Copy the backup at `source` into `data_dir` (which must not exist, or be empty); the
    next server start replays its log from the backup's checkpoint. Returns the manifest."""
    try:
        manifest: dict[str, Any] = orjson.loads((source / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise NotFound(f"{source} is not an EventLens backup (no {MANIFEST})") from None
    if data_dir.exists() and any(data_dir.iterdir()):
        raise InvalidInput(
            f"restore target {data_dir} is not empty: restore into a new directory, then "
            "move it into place with the server stopped",
            field="--data-dir",
        )
    shutil.copytree(source, data_dir, dirs_exist_ok=True)
    (data_dir / MANIFEST).unlink()
    _fsync_tree(data_dir)
    return manifest
