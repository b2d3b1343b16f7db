"""Subprocess for crash tests: apply records from a JSON file, dying (os._exit) at a checkpoint.

python -m tests.ingest.crash_worker DATA_DIR CHECKPOINT RECORDS_JSON
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson

from eventlens.capture.model import CapturedEvent, DeadLetter
from eventlens.config import Settings
from eventlens.ingest import project_writer
from eventlens.ingest.project_writer import LogRecord, ProjectWriter

CRASH_EXIT = 77


def main() -> None:
    data_dir, point, path = sys.argv[1], sys.argv[2], sys.argv[3]

    def checkpoint(name: str) -> None:
        if name == point:
            os._exit(CRASH_EXIT)

    project_writer.checkpoint = checkpoint
    raw = orjson.loads(Path(path).read_bytes())
    records = [
        LogRecord(
            r["end_offset"],
            r["received_at"],
            [CapturedEvent.from_dict(e) for e in r["events"]],
            [DeadLetter(d["index"], d["reason"], d["payload"]) for d in r["dead"]],
        )
        for r in raw
    ]
    writer = ProjectWriter(Settings().with_data_dir(Path(data_dir)), 1)
    writer.apply(records)
    writer.close()
    os._exit(0)


if __name__ == "__main__":
    main()
