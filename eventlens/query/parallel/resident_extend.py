"""Extending a resident bucket with new files instead of rebuilding it (the live-ingest case).

Every ingest commit adds a small file to the buckets it touches, which gives those buckets a new
key. Rebuilding a bucket re-reads and re-sorts all of its rows (and re-decodes every property
column) for a few new ones; extending reads only the new files, sorts only their rows, and merges
them into the sorted arrays in one pass (compiled.merge_positions). Files that disappeared
(compaction, person merges) make the new file set no superset of the old one: then the bucket
is rebuilt.
"""

from __future__ import annotations

import time

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from eventlens.query.parallel.frame import PropColumn, PropKey, person_order
from eventlens.query.parallel.kernels.compiled import merge_positions
from eventlens.query.parallel.resident import (
    ResidentBucket,
    order_codes,
    read_prop_texts,
    read_rows,
    small_codes,
)


def extend_bucket(old: ResidentBucket, paths: tuple[str, ...]) -> ResidentBucket | None:
    """`old` plus the rows of the files of `paths` it does not have (`paths` must include all
    of old.paths). None when a new row has the same person and timestamp as an old one: their
    order needs the uuids of both, so the caller rebuilds."""
    started = time.perf_counter()
    have = set(old.paths)
    new_paths = tuple(p for p in paths if p not in have)
    rows = read_rows(new_paths)
    # Person codes of the old dictionary; persons new to the bucket get the next codes.
    found = pc.fill_null(pc.index_in(rows.person_ids, value_set=old.person_ids), -1)
    mapping = found.to_numpy(zero_copy_only=False).astype(np.int64)
    missing = mapping < 0
    mapping[missing] = old.n_persons + np.arange(int(missing.sum()))
    person_new = mapping[rows.person]
    order_new = person_order(person_new, rows.ts, rows.uuids)
    p_new, t_new = person_new[order_new], rows.ts[order_new]
    merged = merge_positions(old.person, old.ts, p_new, t_new)
    if merged is None:
        return None
    pos_old, pos_new = merged
    total = old.rows + p_new.size

    def place(a_old: np.ndarray, a_new: np.ndarray) -> np.ndarray:
        out = np.empty(total, np.result_type(a_old.dtype, a_new.dtype))
        out[pos_old] = a_old
        out[pos_new] = a_new
        return out

    bucket = ResidentBucket(
        paths=paths,
        ts=place(old.ts, t_new),
        event=place(old.event, rows.event[order_new]),
        person=place(old.person, p_new),
        person_ids=pa.concat_arrays([old.person_ids, rows.person_ids.filter(pa.array(missing))]),
        order=order_codes(place(old.order.astype(np.int64), old.rows + order_new)),
        build_s=0.0,
        read_paths=(old.read_paths or old.paths) + new_paths,
    )
    with old._lock:
        columns = dict(old.props)
        texts = {k: list(v) for k, v in old.texts.items()}
    for key, column in columns.items():
        codes, values, key_texts = _extend_prop(column, texts[key], new_paths, key)
        bucket.props[key] = PropColumn(
            small_codes(place(column.codes, codes[order_new]), len(values)), values
        )
        bucket.texts[key] = key_texts
    bucket.build_s = time.perf_counter() - started
    return bucket


def _extend_prop(
    column: PropColumn, texts: list[str], new_paths: tuple[str, ...], key: PropKey
) -> tuple[np.ndarray, list[object], list[str]]:
    """The new files' codes of property `key` in the extended dictionary (file order), its
    decoded values and its JSON texts."""
    codes, new_texts = read_prop_texts(new_paths, key)
    index = {t: i for i, t in enumerate(texts)}
    values = list(column.values)
    remap = np.empty(len(new_texts) + 1, np.int64)
    remap[-1] = -1  # missing / null stays -1
    for i, text in enumerate(new_texts):
        code = index.get(text)
        if code is None:
            code = index[text] = len(texts)
            texts.append(text)
            values.append(orjson.loads(text))
        remap[i] = code
    return remap[codes], values, texts
