"""The event table's schema and the person-bucket function (storage.md items 4, 9).

Partition columns (`day`, `bucket`) are not stored inside the Parquet files (Delta keeps them in
its log): readers take them from the file's partition values.
"""

from __future__ import annotations

import hashlib
import uuid as uuidlib

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


def bucket_of(person_id: str, buckets: int = DEFAULT_BUCKETS) -> int:
    """bucket = first 32 bits of the person UUID mod B (a UUID is already uniformly hashed)."""
    return int(person_id[:8], 16) % buckets
