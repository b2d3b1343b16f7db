"""Bulk import of event exports (Parquet, CSV, JSON lines) straight into a project's event table
(storage.md item 10), with the same person resolution and uuid dedupe as the log consumer.

Parsing and validation run in DuckDB (vectorised, streaming, bounded memory); each chunk then
goes through ingest.batch.prepare_batch (the consumer's code) and one Delta append.

Row shape (capture shape): uuid, event, distinct_id, timestamp (ISO 8601, or epoch seconds /
milliseconds / microseconds told apart by magnitude), properties (a JSON object; in CSV and
Parquet a JSON string), optional top-level $set / $set_once (folded into properties like capture
does). A missing uuid is derived from the row's content (md5), so re-importing a file dedupes.
Invalid rows go to the dead-letter store with their reason; `index` is the row's ordinal among
the file's data rows (blank JSON lines are not rows).

Each chunk is written in files per (month, bucket) (finer periods when those would be too big,
storage/event_table.py `coarse_days`), and when rows were added the import ends with a
compaction to one file per (period, bucket): an export of any order is left as queries want it.

Exactly-once and resumable: chunk k of an import commits app transaction (import id, k) with its
rows; the state db remembers the last chunk applied. Re-running the same import (same path, size,
mtime) skips applied chunks and repairs a crash between the table and the state commit.
"""

from __future__ import annotations

import gc
import hashlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eventlens.capture.fields import (
    FUTURE_CUTOFF_US,
    ORIGINAL_TIMESTAMP,
    TIMESTAMP_CLAMPED,
    iso_us,
)
from eventlens.capture.import_rows import BINARY, IMPORT_MARKER
from eventlens.config import Settings
from eventlens.errors import InvalidInput, NotFound, Unavailable
from eventlens.ingest.batch import prepare_batch
from eventlens.ingest.project_writer import writer_lock
from eventlens.observability import metrics
from eventlens.storage import deadletters, state, uuid_runs
from eventlens.storage.event_table import EventTable

DEFAULT_CHUNK_ROWS = 1_000_000
# Chunks per state transaction (and writer-lock hold): chunk k's Delta append overlaps chunk
# k+1's preparation inside a group; the group's last append does not overlap anything.
CHUNKS_PER_COMMIT = 4
FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_FIELDS = ("uuid", "event", "distinct_id", "timestamp", "properties", "$set", "$set_once")


SAMPLE_REJECTED = 5  # rejected rows an ImportResult keeps, to show what was wrong


@dataclass(frozen=True)
class Rejected:
    row: int  # ordinal among the file's data rows (the dead letter's index)
    reason: str
    payload: Any  # the row's original values, as stored in the dead letter


@dataclass(frozen=True)
class ImportResult:
    imported: int  # rows added to the table
    duplicates: int  # rows dropped because their uuid was already stored (or repeated)
    invalid: int  # rows sent to the dead-letter store
    reasons: dict[str, int] = field(default_factory=dict)  # invalid rows per reason
    sample: tuple[Rejected, ...] = ()  # the first SAMPLE_REJECTED rejected rows


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _original_json(c: str, typ: str) -> str:
    """JSON of the SQL value `c` (a file column of DuckDB type `typ`) as the file held it, for
    a dead letter: binary as {"$binary": base64, "$type": typ}, a native timestamp as ISO
    text, anything else as its JSON value (text stays text)."""
    if typ == "BLOB":
        return f"json_object('{BINARY}', to_base64({c}), '$type', '{typ}')"
    if typ.startswith(("TIMESTAMP", "DATE")):
        return f"to_json(strftime(CAST({c} AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%fZ'))"
    return f"to_json({c})"


def _uuid_text(name: str, typ: str) -> str:
    """The file's uuid column as text the uuid rule reads: 16 bytes of binary (BLOB, or
    Parquet's FixedSizeBinary(16) / UUID types) as 32 hex digits."""
    c = f"t.{_quote(name)}"
    if typ == "BLOB":
        return (
            f"CASE WHEN octet_length({c}) = 16 THEN lower(hex({c})) "
            f"WHEN {c} IS NOT NULL THEN 'binary of ' || octet_length({c}) || ' bytes' END"
        )
    return f"CAST({c} AS VARCHAR)"


@dataclass(frozen=True)
class _Source:
    sql: str  # the columns below, in file order
    raw: str  # SQL (over the source's columns) for a rejected row's original values, as JSON


def _source_sql(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> _Source:
    """SQL yielding text columns (line, bad, uuid, event, distinct_id, ts, ts_native, props,
    set_, set_once) in file order, plus `orig` (the row as the file held it, JSON) for
    Parquet and CSV. `line` is the raw JSON line (JSON lines only); `ts_native` is µs when the
    file has a real timestamp column."""
    p = str(path).replace("'", "''")
    if fmt == "jsonl":
        # One JSON parse per line: extract all fields at once (objects come back as JSON text,
        # so `properties` may be an object or a string holding one).
        paths = [
            "$.uuid",
            "$.event",
            "$.distinct_id",
            '$."$distinct_id"',
            "$.timestamp",
            "$.properties",
            '$."$set"',
            '$."$set_once"',
        ]
        path_list = "[" + ", ".join("'" + x + "'" for x in paths) + "]"
        sql = f"""
        WITH lines AS (
            SELECT line, json_valid(line) AND starts_with(ltrim(line), '{{') AS ok
            FROM read_csv('{p}', columns={{'line': 'VARCHAR'}}, header=false, delim='\x01',
                          quote='', escape='', auto_detect=false, max_line_size=67108864)
            WHERE line IS NOT NULL AND trim(line) <> ''
        ), x AS (
            SELECT line, NOT ok AS bad,
                   CASE WHEN ok THEN json_extract_string(line, {path_list}) END AS f
            FROM lines
        )
        SELECT line, bad, f[1] AS uuid, f[2] AS event, coalesce(f[3], f[4]) AS distinct_id,
               f[5] AS ts, NULL::BIGINT AS ts_native, f[6] AS props, f[7] AS set_,
               f[8] AS set_once, NULL::VARCHAR AS orig
        FROM x"""
        return _Source(sql, "line")
    if fmt == "csv":
        rel = f"read_csv('{p}', all_varchar=true, header=true, max_line_size=67108864)"
    else:
        rel = f"read_parquet('{p}')"
    cols = {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}

    def col(name: str) -> str:
        if name not in cols:
            return "NULL::VARCHAR"
        if name == "uuid":
            return _uuid_text(name, cols[name])
        if cols[name].startswith(("STRUCT", "MAP")):
            return f"CAST(to_json(t.{_quote(name)}) AS VARCHAR)"
        return f"CAST(t.{_quote(name)} AS VARCHAR)"

    ts_type = cols.get("timestamp", "")
    ts_native = 'epoch_us(t."timestamp")' if ts_type.startswith("TIMESTAMP") else "NULL::BIGINT"
    # The original row as JSON, built only for rejected rows (a struct is cheap to carry).
    kept = [f for f in (*_FIELDS, "$distinct_id") if f in cols]
    struct = ", ".join(f"{_quote('o_' + f)}: t.{_quote(f)}" for f in kept) or "none: NULL"
    pairs = [f"'{f}', " + _original_json(f"orig.{_quote('o_' + f)}", cols[f]) for f in kept]
    raw = f"CAST(json_object({', '.join(pairs)}) AS VARCHAR)" if kept else "'{}'"
    sql = f"""
        SELECT NULL::VARCHAR AS line, false AS bad,
               {col("uuid")} AS uuid, {col("event")} AS event,
               coalesce({col("distinct_id")}, {col("$distinct_id")}) AS distinct_id,
               {col("timestamp") if not ts_type.startswith("TIMESTAMP") else "NULL::VARCHAR"}
                   AS ts,
               {ts_native} AS ts_native, {col("properties")} AS props,
               {col("$set")} AS set_, {col("$set_once")} AS set_once,
               {{{struct}}} AS orig
        FROM {rel} t"""
    return _Source(sql, raw)


# The uuid rule (capture/import_rows.py `import_uuid`): what DuckDB's UUID cast reads (any case,
# dashes or not, braces), `urn:uuid:` before it, or 16 bytes base64-encoded. The fallbacks run
# only for the rows the plain cast refused.
_UUID_SQL = """coalesce(
    TRY_CAST(uuid_in AS UUID),
    CASE WHEN starts_with(lower(uuid_in), 'urn:uuid:') THEN TRY_CAST(substr(uuid_in, 10) AS UUID)
         WHEN strlen(uuid_in) = 24 AND regexp_full_match(uuid_in, '[A-Za-z0-9+/_-]{22}==')
         THEN TRY_CAST(lower(hex(from_base64(replace(replace(uuid_in, '-', '+'), '_', '/'))))
                       AS UUID) END)"""


def _import_sql(source: _Source, max_event: int, now_us: int) -> str:
    """Normalise and validate; `reason` is NULL for a valid row. Heavy expressions (the raw
    payload, the derived uuid) sit inside CASE so only rows that need them pay for them.

    Timestamps follow capture's policy (docs/capture.md "Far past and future times") with the
    import's start `now_us` as the receive time: more than 23 h ahead or before 1970 ->
    `now_us`, `clamped` says which, `ts_orig` / `ts_claimed` keep what the file said."""
    future = now_us + FUTURE_CUTOFF_US
    return f"""
    WITH src AS ({source.sql}),
    n AS (
        SELECT line, bad, uuid, event, distinct_id, ts, props AS props_in, set_, set_once, orig,
            NULLIF(trim(uuid), '') AS uuid_in,
            NULLIF(trim(ts), '') AS ts_in,
            ts_native,
            CASE WHEN props IS NULL OR trim(props) IN ('', 'null') THEN '{{}}'
                 WHEN starts_with(ltrim(props), '{{') AND json_valid(props) THEN props
            END AS props_ok
        FROM src
    ),
    v AS (
        SELECT *,
            CASE WHEN uuid_in IS NOT NULL
                 THEN CAST({_UUID_SQL} AS VARCHAR) END AS uuid_ok,
            TRY_CAST(ts_in AS DOUBLE) AS ts_num
        FROM n
    ),
    w AS (
        SELECT *,
            coalesce(ts_native, CASE
                WHEN ts_num IS NULL THEN epoch_us(TRY_CAST(ts_in AS TIMESTAMPTZ))
                WHEN abs(ts_num) < 1e11 THEN CAST(ts_num * 1e6 AS BIGINT)
                WHEN abs(ts_num) < 1e14 THEN CAST(ts_num * 1e3 AS BIGINT)
                ELSE TRY_CAST(ts_num AS BIGINT) END) AS ts_us
        FROM v
    ),
    r AS (
        SELECT *,
            CASE WHEN bad THEN 'row is not a JSON object'
                 WHEN event IS NULL OR event = '' THEN 'event is missing or empty'
                 WHEN distinct_id IS NULL OR distinct_id = ''
                      THEN 'distinct_id is missing or empty'
                 WHEN uuid_in IS NOT NULL AND uuid_ok IS NULL AND starts_with(uuid_in, 'binary of ')
                      THEN 'uuid is binary but not 16 bytes'
                 WHEN uuid_in IS NOT NULL AND uuid_ok IS NULL THEN 'uuid is not a valid UUID'
                 WHEN ts_us IS NULL THEN 'timestamp is missing or not ISO 8601 / epoch'
                 WHEN props_ok IS NULL THEN 'properties is not a JSON object'
                 WHEN strlen(props_ok) + strlen(coalesce(set_, '')) + strlen(coalesce(set_once, ''))
                      > {max_event} THEN 'event is larger than {max_event} bytes'
            END AS reason
        FROM w
    )
    SELECT reason,
        CASE WHEN reason IS NOT NULL THEN {source.raw} END AS raw,
        CASE WHEN uuid_ok IS NOT NULL THEN uuid_ok WHEN reason IS NULL THEN (
            substr(md5(concat_ws(chr(31), event, distinct_id, ts_in, props_ok)), 1, 8) || '-' ||
            substr(md5(concat_ws(chr(31), event, distinct_id, ts_in, props_ok)), 9, 4) || '-' ||
            substr(md5(concat_ws(chr(31), event, distinct_id, ts_in, props_ok)), 13, 4) || '-' ||
            substr(md5(concat_ws(chr(31), event, distinct_id, ts_in, props_ok)), 17, 4) || '-' ||
            substr(md5(concat_ws(chr(31), event, distinct_id, ts_in, props_ok)), 21, 12))
        END AS uuid,
        event, left(distinct_id, 200) AS distinct_id,
        CASE WHEN reason IS NULL AND (ts_us > {future} OR ts_us < 0) THEN {now_us}
             ELSE ts_us END AS timestamp,
        CASE WHEN reason IS NOT NULL THEN NULL
             WHEN ts_us > {future} THEN 'future' WHEN ts_us < 0 THEN 'past' END AS clamped,
        CASE WHEN reason IS NULL AND (ts_us > {future} OR ts_us < 0) THEN ts_in END AS ts_orig,
        CASE WHEN reason IS NULL AND (ts_us > {future} OR ts_us < 0) THEN ts_us
             END AS ts_claimed,
        props_ok AS properties,
        CASE WHEN set_ = 'null' THEN NULL ELSE set_ END AS set_,
        CASE WHEN set_once = 'null' THEN NULL ELSE set_once END AS set_once
    FROM r"""


def _chunks(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
    """Exactly `rows` rows per chunk (the last may be shorter), so chunk k is stable across
    runs of the same import."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending = rest.to_batches()
            count = rest.num_rows
    if count:
        yield pa.Table.from_batches(pending, schema=reader.schema)


def _prefetch(chunks: Iterator[pa.Table]) -> Generator[pa.Table, None, None]:
    """Read the next chunk (DuckDB, GIL released) while the caller applies the current one."""
    q: queue.Queue[pa.Table | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def run() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        q.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(None)
        except BaseException as exc:  # handed to the consumer thread
            q.put(exc)

    thread = threading.Thread(target=run, name="import-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _fold_sets(props: str, set_: str | None, set_once: str | None) -> str | None:
    """Top-level $set/$set_once into properties (top level wins); None if not JSON objects."""
    obj = orjson.loads(props)
    for key, raw in (("$set", set_), ("$set_once", set_once)):
        if raw is None:
            continue
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(value, dict):
            return None
        inner = obj.get(key)
        obj[key] = {**inner, **value} if isinstance(inner, dict) else value
    return orjson.dumps(obj).decode()


def _mark_clamped(chunk: pa.Table, props: pa.ChunkedArray) -> pa.ChunkedArray:
    """Properties of clamped rows get capture's two markers (rare rows: a Python pass)."""
    props_list = props.to_pylist()
    rows = zip(
        chunk.column("clamped").to_pylist(),
        chunk.column("ts_orig").to_pylist(),
        chunk.column("ts_claimed").to_pylist(),
        strict=True,
    )
    for i, (clamped, orig, claimed) in enumerate(rows):
        if clamped is not None and props_list[i] is not None:
            obj = orjson.loads(props_list[i])
            if orig is None:
                orig = iso_us(claimed) or f"{claimed} µs after 1970-01-01T00:00:00Z"
            obj[ORIGINAL_TIMESTAMP] = orig
            obj[TIMESTAMP_CLAMPED] = clamped
            props_list[i] = orjson.dumps(obj).decode()
    return pa.chunked_array([pa.array(props_list, pa.string())])


def _split(chunk: pa.Table, source_name: str) -> tuple[pa.Table, list[tuple[int, str, Any]]]:
    """(valid rows as prepare_batch input, dead letters as (index-in-chunk, reason, payload)).
    A payload that is an object is marked with IMPORT_MARKER (the file's name), so replay
    reads it with the import's rules."""
    reason = chunk.column("reason")
    dead: list[tuple[int, str, Any]] = []
    has_sets = pc.or_(pc.is_valid(chunk.column("set_")), pc.is_valid(chunk.column("set_once")))
    props = chunk.column("properties")
    if pc.any(pc.and_(has_sets, pc.is_null(reason))).as_py():
        props_list = props.to_pylist()
        reasons = reason.to_pylist()
        sets = chunk.column("set_").to_pylist()
        onces = chunk.column("set_once").to_pylist()
        for i, (s, o) in enumerate(zip(sets, onces, strict=True)):
            if reasons[i] is None and (s is not None or o is not None):
                folded = _fold_sets(props_list[i], s, o)
                if folded is None:
                    reasons[i] = "$set / $set_once is not a JSON object"
                else:
                    props_list[i] = folded
        reason = pa.chunked_array([pa.array(reasons, pa.string())])
        props = pa.chunked_array([pa.array(props_list, pa.string())])
    if pc.any(pc.is_valid(chunk.column("clamped"))).as_py():
        props = _mark_clamped(chunk, props)
    invalid = pc.is_valid(reason)
    if pc.any(invalid).as_py():
        raws = chunk.column("raw").to_pylist()
        for i, r in enumerate(reason.to_pylist()):
            if r is not None:
                raw = raws[i]
                try:
                    payload = orjson.loads(raw) if raw is not None else None
                except orjson.JSONDecodeError:
                    payload = raw
                if isinstance(payload, dict):
                    payload[IMPORT_MARKER] = source_name
                dead.append((i, r, payload))
    valid = pc.invert(invalid)
    events = pa.table(
        {
            "uuid": chunk.column("uuid"),
            "event": chunk.column("event"),
            "distinct_id": chunk.column("distinct_id"),
            "timestamp": chunk.column("timestamp"),
            "properties": props,
        }
    ).filter(valid)
    return events, dead


def _check_consumer_caught_up(conn: sqlite3.Connection, table: EventTable) -> None:
    """Refuse to import while the table holds ingest rows whose state the consumer has not
    re-derived yet (it crashed between its two commits): persons and the dedupe index would
    be applied out of log order."""
    committed = table.committed_log_offset()
    applied = state.get_meta(conn, state.STATE_OFFSET) or 0
    if committed is not None and committed > applied:
        raise Unavailable(
            f"the ingest consumer has not finished recovering this project (table at log offset "
            f"{committed}, state at {applied}): start `eventlens serve` and retry the import"
        )


@dataclass
class _Group:
    counts: ImportResult
    rows: int  # file rows covered by the group's chunks
    more: bool  # False when the chunk iterator is exhausted


def _apply_group(
    conn: sqlite3.Connection,
    table: EventTable,
    writer: ThreadPoolExecutor,
    project_id: int,
    app_id: str,
    numbered: Iterator[tuple[int, pa.Table]],
    row_base: int,
    received_at: int,
    progress: Callable[[int], None] | None,
    source_name: str,
) -> _Group:
    """Apply up to CHUNKS_PER_COMMIT numbered chunks in ONE state transaction (the caller holds
    the writer lock), pulling them lazily from `numbered`.

    Chunk k's Delta append (app transaction (app_id, k)) runs on `writer` while chunk k+1's
    persons and dedupe are prepared here; appends stay in chunk order. The state commit comes
    after the group's last append, so the state is never ahead of the table; a crash leaves the
    table ahead by some chunks, which the next run re-derives without writing rows."""
    imported = duplicates = invalid = rows = 0
    reasons: dict[str, int] = {}
    sample: list[Rejected] = []
    _check_consumer_caught_up(conn, table)
    done = state.get_meta(conn, app_id) or 0
    table_done = table.app_version(app_id) or 0
    pending: Future[int] | None = None
    last = 0
    more = True
    conn.execute("BEGIN IMMEDIATE")
    try:
        for _ in range(CHUNKS_PER_COMMIT):
            item = next(numbered, None)
            if item is None:
                more = False
                break
            k, chunk = item
            if k > done:
                events, dead = _split(chunk, source_name)
                prepared = prepare_batch(conn, project_id, events)
                base = row_base + rows
                for i, r, p in dead:
                    reasons[r] = reasons.get(r, 0) + 1
                    if len(sample) < SAMPLE_REJECTED:
                        sample.append(Rejected(base + i, r, p))
                deadletters.add(conn, received_at, ((base + i, r, p) for i, r, p in dead))
                if pending is not None:
                    pending.result()
                    pending = None
                if k > table_done and prepared.rows.num_rows:
                    pending = writer.submit(
                        table.append, prepared.rows, log_offset=k, app_id=app_id, coarse=True
                    )
                imported += prepared.rows.num_rows
                duplicates += prepared.duplicates
                invalid += len(dead)
                last = k
            rows += chunk.num_rows
            if progress is not None:
                progress(chunk.num_rows)
        if pending is not None:
            pending.result()
            pending = None
        if last:
            state.set_meta(conn, app_id, last)
        conn.execute("COMMIT")
        uuid_runs.remove_orphans(conn)  # merged-away runs
    except BaseException:
        if pending is not None:
            wait([pending])  # never release the writer lock with an append in flight
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    metrics.ingest_duplicates.inc(duplicates)
    return _Group(ImportResult(imported, duplicates, invalid, reasons, tuple(sample)), rows, more)


def _import_id(path: Path) -> str:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return "eventlens-import-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def import_file(
    settings: Settings,
    project_id: int,
    path: Path,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ImportResult:
    """Import `path` (.parquet, .csv, .jsonl/.ndjson) into project `project_id`.

    `progress(n)` is called after each chunk with the number of file rows it covered.
    Raises NotFound for a missing file, InvalidInput for an unsupported or unreadable file.
    Counts cover the chunks applied by this call (chunks applied by an earlier, interrupted run
    of the same import are skipped).
    """
    if not path.is_file():
        raise NotFound(f"import file not found: {path}")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(
            f"unsupported import file type {path.suffix or '(none)'!r} of {path}: "
            "use .parquet, .csv, .jsonl or .ndjson"
        )
    app_id = _import_id(path)
    with writer_lock(settings, project_id):
        table = EventTable.open_or_create(
            settings.event_table_location(project_id), settings.buckets
        )
    conn = state.connect(settings.state_db(project_id))
    con = duckdb.connect(config={"threads": 2})
    imported = duplicates = invalid = 0
    reasons: dict[str, int] = {}
    sample: list[Rejected] = []
    chunks: Generator[pa.Table, None, None] | None = None
    # Person work allocates ~10^5 long-lived dicts per chunk and no reference cycles: without
    # this, CPython's cyclic GC rescans them again and again (measured ~4% of an import).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # the CLI draws its own
        received_at = time.time_ns() // 1000
        try:
            reader = con.sql(
                _import_sql(_source_sql(con, path, fmt), settings.max_event, received_at)
            ).to_arrow_reader(chunk_rows)
        except duckdb.Error as exc:
            raise InvalidInput(f"cannot read {path} as {fmt}: {exc}") from exc
        chunks = _prefetch(_chunks(reader, chunk_rows))
        numbered = enumerate(chunks, start=1)
        row_base = 0
        more = True
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") as writer:
            while more:
                with writer_lock(settings, project_id):
                    group = _apply_group(
                        conn,
                        table,
                        writer,
                        project_id,
                        app_id,
                        numbered,
                        row_base,
                        received_at,
                        progress,
                        path.name,
                    )
                imported += group.counts.imported
                duplicates += group.counts.duplicates
                invalid += group.counts.invalid
                for r, n in group.counts.reasons.items():
                    reasons[r] = reasons.get(r, 0) + n
                sample.extend(group.counts.sample[: SAMPLE_REJECTED - len(sample)])
                row_base += group.rows
                more = group.more
        if imported:
            # Each chunk wrote one file per (period, bucket) it touched: a file of several
            # chunks leaves one per chunk in every period. Merge them now, so the table is at
            # rest when the import returns; queries keep reading the version they pinned
            # (a compaction is one more commit).
            with writer_lock(settings, project_id):
                table.compact(2)
    except duckdb.Error as exc:
        raise InvalidInput(
            f"cannot read {path} as {fmt}: {exc} ({imported} rows imported before the error "
            "are kept; re-running the import resumes after them)"
        ) from exc
    finally:
        if chunks is not None:
            chunks.close()  # stops the reader thread before DuckDB closes
        con.close()
        conn.close()
        if gc_was_enabled:
            gc.enable()
    return ImportResult(imported, duplicates, invalid, reasons, tuple(sample))


def count_rows(path: Path) -> int | None:
    """Row count when cheap to know (Parquet metadata), else None."""
    if FORMATS.get(path.suffix.lower()) != "parquet":
        return None
    return int(pq.ParquetFile(path).metadata.num_rows)
