"""Turn a batch of captured events into event-table rows: uuid dedupe + person assignment.

One code path for the log consumer (ProjectWriter.apply) and bulk import, so both give the same
rows for the same events. Per-event work is vectorised; Python runs per row only for the few
"special" events (identity events and events carrying `$set`/`$set_once`/`$unset`), which are
applied to PersonState in order. Plain events then take their person_id and person properties by
an as-of join on (distinct_id, position) and (person, position) against the changes recorded
after each special event (docs/adr/0002-event-table-and-persons.md).

Input columns: uuid (str), event (str), distinct_id (str), timestamp (int64 µs UTC or
timestamp[us]), properties (JSON object text). Runs inside the caller's state-db transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from eventlens.persons.model import (
    CREATE_ALIAS,
    IDENTIFY,
    LINKED_ID,
    PersonState,
    linked_id,
    mentioned_id,
)
from eventlens.storage import state
from eventlens.storage.schema import EVENT_SCHEMA, person_ids_for

_SPECIAL_EVENTS = pa.array([IDENTIFY, CREATE_ALIAS])


@dataclass
class PreparedBatch:
    rows: pa.Table  # EVENT_SCHEMA, input order, duplicates removed
    duplicates: int


def _dedupe(conn: sqlite3.Connection, uuids: pa.ChunkedArray) -> np.ndarray:
    """Boolean keep-mask: first occurrence of each uuid not already in the index; the kept
    uuids are added to the index."""
    return state.dedupe_keys(conn, state.uuid_keys(uuids))


def _parse_object(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _as_of(
    keys: np.ndarray, pos: np.ndarray, tl_keys: np.ndarray, tl_pos: np.ndarray, n: int
) -> np.ndarray:
    """For each (key, pos), the index into the timeline of the last entry with the same key and
    a smaller position, or -1. The timeline must be sorted by (key, pos)."""
    if len(tl_keys) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    stride = n + 1
    tl_comp = tl_keys.astype(np.int64) * stride + tl_pos
    comp = keys.astype(np.int64) * stride + pos
    j = np.searchsorted(tl_comp, comp, side="right") - 1
    ok = (j >= 0) & (tl_keys[np.clip(j, 0, None)] == keys)
    return np.where(ok, j, -1)


def _take_sorted(col: pa.ChunkedArray, positions: np.ndarray) -> list[Any]:
    """col[positions] as Python values, `positions` ascending. Per chunk: pyarrow's take on a
    chunked array concatenates the whole column first (~0.3 s per 1M JSON strings)."""
    out: list[Any] = []
    start = 0
    for chunk in col.chunks:
        end = start + len(chunk)
        lo, hi = np.searchsorted(positions, [start, end])
        if hi > lo:
            out.extend(chunk.take(pa.array(positions[lo:hi] - start, pa.int64())).to_pylist())
        start = end
    return out


def prepare_batch(conn: sqlite3.Connection, project_id: int, events: pa.Table) -> PreparedBatch:
    """Dedupe `events` by uuid (against the index and within the batch) and give each kept
    event its person_id and person_properties after processing it, in input order."""
    keep = _dedupe(conn, events.column("uuid"))
    duplicates = int(len(keep) - keep.sum())
    if duplicates:
        events = events.filter(pa.array(keep))
    n = events.num_rows
    ts_col = events.column("timestamp")
    if pa.types.is_timestamp(ts_col.type):  # any unit -> µs since the epoch
        ts_col = ts_col.cast(pa.timestamp("us", tz=ts_col.type.tz)).cast(pa.int64())
    ts = ts_col.to_numpy().astype(np.int64)
    props_col = events.column("properties")
    special_mask = pc.or_(
        pc.is_in(events.column("event"), _SPECIAL_EVENTS),
        # = regex `"\$(set|unset")`, as two literal searches (~5x cheaper than re2 here).
        pc.or_(pc.match_substring(props_col, '"$set'), pc.match_substring(props_col, '"$unset"')),
    )
    special_mask = pc.or_(special_mask, pc.match_substring(props_col, f'"{LINKED_ID}"'))
    special = np.flatnonzero(special_mask.to_numpy(zero_copy_only=False))

    encoded = pc.dictionary_encode(events.column("distinct_id")).combine_chunks()
    codes = encoded.indices.to_numpy().astype(np.int64)
    dids: list[str] = encoded.dictionary.to_pylist()
    persons = PersonState(conn, project_id)
    known = persons.preload(dids)
    _, first_pos = np.unique(codes, return_index=True)

    # Person of every distinct id at the start of the batch (unseen ids: the person they will
    # get), computed per distinct id in bulk: the per-id Python work is one dict probe + SHA-1.
    known_pids = pa.array([known.get(d) for d in dids], pa.string())
    unseen_mask = known_pids.is_null()
    unseen_all = np.flatnonzero(unseen_mask.to_numpy(zero_copy_only=False))
    new_pids = person_ids_for(project_id, [dids[c] for c in unseen_all.tolist()])
    start_pids = (
        pc.replace_with_mask(known_pids, unseen_mask, new_pids) if len(unseen_all) else known_pids
    )
    start_enc = pc.dictionary_encode(start_pids)
    initial_pidx = start_enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    pid_list: list[str] = start_enc.dictionary.to_pylist()
    pid_index: dict[str, int] = {p: i for i, p in enumerate(pid_list)}

    def pidx(pid: str) -> int:
        i = pid_index.get(pid)
        if i is None:
            i = pid_index[pid] = len(pid_list)
            pid_list.append(pid)
        return i

    # Properties at the start of the batch: unseen ids' persons are empty ("{}" = index 0).
    props_list: list[str] = ["{}"]
    initial_props: dict[int, int] = dict.fromkeys(initial_pidx[unseen_all].tolist(), 0)
    for pid in dict.fromkeys(known.values()):
        props_list.append(persons.properties_json(pid))
        initial_props[pid_index[pid]] = len(props_list) - 1
    unseen = unseen_all[np.argsort(first_pos[unseen_all], kind="stable")].tolist()

    special_props = [_parse_object(t) for t in _take_sorted(props_col, special)]
    special_events = _take_sorted(events.column("event"), special)
    # Unseen ids that no special event mentions are created in bulk; the others are created
    # lazily at their first occurrence, where sequential processing would create them.
    mentioned = {dids[codes[s]] for s in special.tolist()}
    for s, name, props in zip(special.tolist(), special_events, special_props, strict=True):
        for other in (mentioned_id(name, props), linked_id(dids[codes[s]], props)):
            if other is not None:
                mentioned.add(other)
    bulk = [c for c in unseen if dids[c] not in mentioned]
    persons.bulk_create(
        [dids[c] for c in bulk],
        [pid_list[i] for i in initial_pidx[bulk].tolist()],
        ts[first_pos[bulk]].tolist(),
    )
    creation_order = np.array([c for c in unseen if dids[c] in mentioned], dtype=np.int64)

    did_tl: list[tuple[int, int, int]] = []  # (did code, position, person index)
    props_tl: list[tuple[int, int, int]] = []  # (person index, position, props_list index)
    out_pid = np.empty(n, dtype=np.int64)
    out_props = np.full(n, -1, dtype=np.int64)
    code_of = {d: i for i, d in enumerate(dids)}
    created = 0
    for k, s in enumerate(special.tolist()):
        # Distinct ids first seen (as an event's distinct_id) before s exist by now.
        while created < len(creation_order) and first_pos[creation_order[created]] < s:
            c = int(creation_order[created])
            persons.ensure(dids[c], int(ts[first_pos[c]]))
            created += 1
        persons.drain()
        pid = persons.apply_event(special_events[k], dids[codes[s]], special_props[k], int(ts[s]))
        changed_dids, changed_persons = persons.drain()
        touched = set(changed_persons) | {pid}
        for d in changed_dids:
            target = persons.person_of(d)
            assert target is not None
            touched.add(target)
            if d in code_of:
                did_tl.append((code_of[d], s, pidx(target)))
        for person in sorted(touched):
            props_list.append(persons.properties_json(person))
            props_tl.append((pidx(person), s, len(props_list) - 1))
            if person == pid:
                out_props[s] = len(props_list) - 1
        out_pid[s] = pidx(pid)
    for code in creation_order[created:].tolist():
        persons.ensure(dids[code], int(ts[first_pos[code]]))
    persons.flush()

    plain = np.ones(n, dtype=bool)
    plain[special] = False
    plain_pos = np.flatnonzero(plain)
    plain_codes = codes[plain_pos]
    person_idx = initial_pidx[plain_codes]
    if did_tl:
        tl = np.array(sorted(did_tl), dtype=np.int64)
        j = _as_of(plain_codes, plain_pos, tl[:, 0], tl[:, 1], n)
        person_idx = np.where(j >= 0, tl[np.clip(j, 0, None), 2], person_idx)
    out_pid[plain_pos] = person_idx
    init_props_of = np.full(len(pid_list), -1, dtype=np.int64)
    for p, i in initial_props.items():
        init_props_of[p] = i
    props_idx = init_props_of[person_idx]
    if props_tl:
        tl = np.array(sorted(props_tl), dtype=np.int64)
        j = _as_of(person_idx, plain_pos, tl[:, 0], tl[:, 1], n)
        props_idx = np.where(j >= 0, tl[np.clip(j, 0, None), 2], props_idx)
    # A person first met mid-batch without any change has empty properties.
    if (props_idx < 0).any():
        props_list.append("{}")
        props_idx = np.where(props_idx < 0, len(props_list) - 1, props_idx)
    out_props[plain_pos] = props_idx

    rows = pa.Table.from_arrays(
        [
            events.column("uuid"),
            events.column("event"),
            events.column("distinct_id"),
            pa.array(pid_list, pa.string()).take(pa.array(out_pid)),
            pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            props_col,
            pa.array(props_list, pa.string()).take(pa.array(out_props)),
        ],
        schema=EVENT_SCHEMA,
    )
    return PreparedBatch(rows, duplicates)
