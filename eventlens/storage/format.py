"""The data directory's format version (`<data_dir>/FORMAT`), and the explicit migrations.

A release reads exactly one format, `FORMAT_VERSION`. A directory of a newer format (written
by a newer release: after a rollback) is refused with `IncompatibleDataFormat`, because an
older release could misread or damage it; an older one is refused too until `eventlens
migrate` moves it forward, one registered step at a time (docs/operations.md, "Upgrade and
rollback"). A directory from before versioning (no FORMAT, but data) is format 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import orjson

from eventlens import __version__
from eventlens.errors import IncompatibleDataFormat

FORMAT_VERSION = 1
FORMAT_FILE = "FORMAT"
# Format N -> N+1: the step that rewrites a directory of format N. Empty while only format 1
# exists; a release that changes the layout adds its step here and bumps FORMAT_VERSION.
MIGRATIONS: dict[int, Callable[[Path], None]] = {}


def read_version(data_dir: Path) -> int | None:
    """The recorded format; 1 for a pre-versioning directory with data; None when empty."""
    try:
        return int(orjson.loads((data_dir / FORMAT_FILE).read_bytes())["format"])
    except FileNotFoundError:
        has_data = (data_dir / "meta.db").exists() or (data_dir / "log").exists()
        return 1 if has_data else None
    except (ValueError, KeyError, TypeError) as exc:
        raise IncompatibleDataFormat(
            f"{data_dir / FORMAT_FILE} is unreadable ({exc}); restore it from a backup"
        ) from None


def write_version(data_dir: Path, version: int) -> None:
    """Record `version` atomically (write, fsync, rename)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / (FORMAT_FILE + ".tmp")
    body = orjson.dumps({"format": version, "written_by": __version__})
    with open(tmp, "wb") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, data_dir / FORMAT_FILE)


def ensure_current(data_dir: Path) -> None:
    """Before opening `data_dir` for writing: record the format of a new directory, refuse a
    newer or an older one with a message that says what to do."""
    version = read_version(data_dir)
    if version is None or (version == FORMAT_VERSION and not (data_dir / FORMAT_FILE).exists()):
        write_version(data_dir, FORMAT_VERSION)
        return
    if version > FORMAT_VERSION:
        raise IncompatibleDataFormat(
            f"{data_dir} has data format {version}, written by a newer EventLens; this release "
            f"({__version__}) reads format {FORMAT_VERSION}. Run the newer release, or restore "
            "the backup taken before the upgrade (docs/operations.md, 'Upgrade and rollback')"
        )
    if version < FORMAT_VERSION:
        raise IncompatibleDataFormat(
            f"{data_dir} has data format {version}; this release reads format "
            f"{FORMAT_VERSION}. Take a backup (eventlens backup), then run eventlens migrate"
        )


def migrate(data_dir: Path, *, dry_run: bool = False) -> list[int]:
    """Apply the registered steps from the directory's format up to FORMAT_VERSION; return the
    formats it passed through (empty when already current). Each step is recorded as it
    completes, so an interrupted migration resumes at the step that did not finish."""
    version = read_version(data_dir)
    if version is None:
        raise IncompatibleDataFormat(f"{data_dir} holds no EventLens data to migrate")
    if version > FORMAT_VERSION:
        ensure_current(data_dir)  # raises with the rollback advice
    steps = list(range(version, FORMAT_VERSION))
    missing = [v for v in steps if v not in MIGRATIONS]
    if missing:
        raise IncompatibleDataFormat(f"no migration from data format {missing[0]} in this release")
    if dry_run:
        return steps
    for v in steps:
        MIGRATIONS[v](data_dir)
        write_version(data_dir, v + 1)
    if not (data_dir / FORMAT_FILE).exists():
        write_version(data_dir, FORMAT_VERSION)
    return steps
