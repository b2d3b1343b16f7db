"""Write generated events to Parquet (one row group per chunk) or JSON-lines.

Files are written to a temporary name next to the target and renamed at the end, so a reader
never sees a half-written file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eventlens.errors import InvalidInput
from eventlens.generate.core import DEFAULT_CHUNK_EVENTS, generate
from eventlens.generate.encode import GENERATED_SCHEMA

PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def jsonl_bytes(batch: pa.RecordBatch) -> memoryview:
    """One JSON object per line: {"uuid","event","distinct_id","timestamp" (ISO 8601, µs, Z),
    "properties" (a nested object)}; every line ends with a newline. A view, not a copy."""
    iso = pc.strftime(batch.column("timestamp"), format="%Y-%m-%dT%H:%M:%S")
    lines = pc.binary_join_element_wise(
        '{"uuid":"',
        batch.column("uuid"),
        '","event":"',
        batch.column("event"),
        '","distinct_id":"',
        batch.column("distinct_id"),
        '","timestamp":"',
        iso,
        'Z","properties":',
        batch.column("properties"),
        "}\n",
        "",
    )
    # The value buffer of a string array is exactly its strings back to back.
    _, offsets_buf, data = lines.buffers()
    assert offsets_buf is not None and data is not None
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)
    return memoryview(data)[offsets[lines.offset] : offsets[lines.offset + len(lines)]]


def write_file(
    path: Path | str,
    n_events: int,
    seed: int = 42,
    end: datetime | None = None,
    days: int = 90,
    chunk_size: int = DEFAULT_CHUNK_EVENTS,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Generate `n_events` (see `generate`) into `path`; the format follows the suffix
    (.parquet/.pq: zstd Parquet, one row group per chunk; .jsonl/.ndjson: JSON-lines).
    `progress(k)` is called after each chunk of k events. Returns the number of events written.
    Raises InvalidInput for an unknown suffix (and for bad generator arguments)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PARQUET_SUFFIXES + JSONL_SUFFIXES:
        raise InvalidInput(
            f"cannot tell the output format of {str(path)!r}: use a name ending in "
            f"{', '.join(PARQUET_SUFFIXES + JSONL_SUFFIXES)}",
            field="out",
        )
    batches = generate(n_events, seed=seed, end=end, days=days, chunk_size=chunk_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    written = 0
    try:
        if suffix in PARQUET_SUFFIXES:
            with pq.ParquetWriter(tmp, GENERATED_SCHEMA, compression="zstd") as writer:
                for batch in batches:
                    writer.write_batch(batch, row_group_size=len(batch))
                    written += len(batch)
                    if progress is not None:
                        progress(len(batch))
        else:
            with open(tmp, "wb") as f:
                for batch in batches:
                    f.write(jsonl_bytes(batch))
                    written += len(batch)
                    if progress is not None:
                        progress(len(batch))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return written
