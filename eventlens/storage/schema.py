"""The event table's schema and the person-bucket function (storage.md items 4, 9).

Partition columns (`day`, `bucket`) are not stored inside the Parquet files (Delta keeps them in
its log): readers take them from the file's partition values.
"""

from __future__ import annotations

import hashlib
import uuid as uuidlib

import numpy as np
import pyarrow as pa

DEFAULT_BUCKETS = 16

# Columns stored in every data file, in this order.
EVENT_SCHEMA = pa.schema(
    [
        pa.field("uuid", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("distinct_id", pa.string(), nullable=False),
        pa.field("person_id", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        # JSON object text: the event's properties ($set/$set_once included).
        pa.field("properties", pa.string(), nullable=False),
        # JSON object text: the person's properties right after this event was processed
        # ("person on events": versioned with the table, so a pinned version is reproducible).
        pa.field("person_properties", pa.string(), nullable=False),
    ]
)
PARTITION_COLUMNS = ["day", "bucket"]
# Full schema as written (partition columns last): day = UTC date of `timestamp`.
TABLE_SCHEMA = pa.schema(
    [
        *EVENT_SCHEMA,
        pa.field("day", pa.date32(), nullable=False),
        pa.field("bucket", pa.int32(), nullable=False),
    ]
)

# Namespace for deterministic person ids: uuid5(PERSON_NAMESPACE, f"{project_id}:{distinct_id}")
# of the distinct_id that created the person, so replaying the log yields the same ids.
PERSON_NAMESPACE = uuidlib.UUID("6f0e2a1c-3b8d-4e51-9a7c-2d4b5e6f7a80")


_NAMESPACE_BYTES = PERSON_NAMESPACE.bytes


def person_id_for(project_id: int, distinct_id: str) -> str:
    """uuid5(PERSON_NAMESPACE, f"{project_id}:{distinct_id}") as text, computed without
    uuid.UUID objects (bulk import calls this once per new distinct id)."""
    d = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + f"{project_id}:{distinct_id}".encode()).digest()[:16]
    )
    d[6] = (d[6] & 0x0F) | 0x50  # version 5
    d[8] = (d[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = d.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Output columns of the 32 hex digits in the 36-character 8-4-4-4-12 spelling.
_DIGIT_COLUMNS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def person_ids_for(project_id: int, distinct_ids: list[str]) -> pa.Array:
    """person_id_for of every distinct id, as a string array; one SHA-1 call per id in Python,
    the uuid5 bit setting and hex spelling in numpy (bulk import creates ~10^5 ids per chunk)."""
    n = len(distinct_ids)
    if n == 0:
        return pa.array([], pa.string())
    prefix = _NAMESPACE_BYTES + f"{project_id}:".encode()
    sha1 = hashlib.sha1
    raw = b"".join([sha1(prefix + d.encode()).digest()[:16] for d in distinct_ids])
    b = np.frombuffer(raw, dtype=np.uint8).reshape(n, 16).copy()
    b[:, 6] = (b[:, 6] & 0x0F) | 0x50  # version 5
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = b >> 4
    nibbles[:, 1::2] = b & 0x0F
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _DIGIT_COLUMNS] = _HEX_DIGITS[nibbles]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text.tobytes())]
    )


def buckets_of(person_ids: pa.Array, buckets: int = DEFAULT_BUCKETS) -> np.ndarray:
    """bucket_of of every person id (int32), vectorised when all are 36-character UUIDs."""
    arr = person_ids.cast(pa.string())
    n = len(arr)
    if n and arr.null_count == 0:
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
        if (np.diff(offsets) == 36).all():
            data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
            chars = data[offsets[0] : offsets[0] + 36 * n].reshape(n, 36)[:, :8]
            digits = _HEX_VALUES[chars].astype(np.uint64)
            if (digits != 255).all():
                weights = np.uint64(16) ** np.arange(7, -1, -1, dtype=np.uint64)
                value = (digits * weights).sum(axis=1)
                result: np.ndarray = (value % np.uint64(buckets)).astype(np.int32)
                return result
    return np.array([bucket_of(p, buckets) for p in arr.to_pylist()], dtype=np.int32)


_HEX_VALUES = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX_VALUES[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX_VALUES[_c] = 10 + _i


def bucket_of(person_id: str, buckets: int = DEFAULT_BUCKETS) -> int:
    """bucket = first 32 bits of the person UUID mod B (a UUID is already uniformly hashed)."""
    return int(person_id[:8], 16) % buckets
