"""Turn a simulated population into an Arrow record batch in the capture shape.

Strings are built without a per-event Python loop: fixed-width ids (uuids, anonymous ids) are
written as ASCII bytes straight into Arrow buffers, and the properties JSON is assembled from a
few small lookup tables (every combination of the categorical values is precomputed) joined
element-wise by Arrow.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlens.generate import shape as S
from eventlens.generate.simulate import Population

# The columns `eventlens import` reads (the capture shape).
GENERATED_SCHEMA = pa.schema(
    [
        pa.field("uuid", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("distinct_id", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("properties", pa.string(), nullable=False),
    ]
)

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_M1, _M2, _GOLDEN = (
    np.uint64(0xBF58476D1CE4E5B9),
    np.uint64(0x94D049BB133111EB),
    np.uint64(0x9E3779B97F4A7C15),
)
_PLAN_STATES = ["", "free", *(p[0] for p in S.PLANS)]  # 0 anonymous, 1 free, 2.. paid


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64, so distinct inputs give distinct ids."""
    z = x.astype(np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _hex16(words: np.ndarray) -> np.ndarray:
    """uint64 (n,) -> ASCII lowercase hex (n, 16) uint8, big-endian."""
    b = words.astype(">u8").view(np.uint8).reshape(-1, 8)
    nib = np.empty((len(words), 16), dtype=np.uint8)
    nib[:, 0::2] = b >> 4
    nib[:, 1::2] = b & 15
    return _HEX[nib]


def fixed_width_strings(chars: np.ndarray) -> pa.StringArray:
    """(n, w) uint8 ASCII -> an Arrow string array of n strings of width w (no copy per row)."""
    n, w = chars.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    data = np.ascontiguousarray(chars).reshape(-1)
    arr = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    assert isinstance(arr, pa.StringArray)
    return arr


def uuid7_strings(ts_us: np.ndarray, rng: np.random.Generator) -> pa.StringArray:
    """UUIDv7 text: the event's millisecond timestamp, then random bits from `rng`."""
    n = len(ts_us)
    rand = rng.integers(0, np.iinfo(np.int64).max, size=(n, 2), dtype=np.int64).astype(np.uint64)
    ms = (ts_us // 1000).astype(np.uint64)
    hi = (ms << np.uint64(16)) | np.uint64(0x7000) | (rand[:, 0] & np.uint64(0x0FFF))
    lo = np.uint64(0x8000000000000000) | (rand[:, 1] & np.uint64(0x3FFFFFFFFFFFFFFF))
    h = np.concatenate([_hex16(hi), _hex16(lo)], axis=1)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src, width in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        out[:, dst : dst + width] = h[:, src : src + width]
    return fixed_width_strings(out)


def anon_ids(person_global: np.ndarray, key: int) -> pa.StringArray:
    """`anon-<16 hex>`, unique per global person index for a given key (seed)."""
    words = mix64(person_global.astype(np.uint64) ^ np.uint64(key))
    prefix = np.frombuffer(b"anon-", dtype=np.uint8)
    return fixed_width_strings(
        np.concatenate([np.broadcast_to(prefix, (len(words), 5)), _hex16(words)], axis=1)
    )


def _scatter(values: pa.Array, mask: np.ndarray, default: str = "") -> pa.Array:
    """An array of len(mask) holding `values` (in order) where mask is set, else `default`."""
    table = pa.concat_arrays([pa.array([default], pa.string()), values.cast(pa.string())])
    idx = np.zeros(len(mask), dtype=np.int64)
    idx[mask] = np.arange(1, int(mask.sum()) + 1)
    return table.take(pa.array(idx))


def _person_fragments() -> pa.Array:
    """'{"$browser":..,"$os":..,"$device_type":..,"country":..' for every (os, browser, country)."""
    out = []
    for os_name, device, _ in S.OSES:
        for browser in S.BROWSERS:
            for country, _, _ in S.COUNTRIES:
                out.append(
                    f'{{"$browser":"{browser}","$os":"{os_name}",'
                    f'"$device_type":"{device}","country":"{country}"'
                )
    return pa.array(out, pa.string())


def _event_fragments() -> pa.Array:
    """',"$current_url":..,"plan":..,"revenue":..}' for every (path, plan state, is purchase)."""
    out = []
    for path in S.PATHS:
        for state, plan in enumerate(_PLAN_STATES):
            for purchase in (False, True):
                frag = f',"$current_url":"https://example.com{path}"'
                if plan:
                    frag += f',"plan":"{plan}"'
                if purchase and state >= 2:
                    frag += f',"revenue":{S.PLANS[state - 2][2] / 100:.2f}'
                out.append(frag + "}")
    return pa.array(out, pa.string())


_PERSON_FRAGMENTS = _person_fragments()
_EVENT_FRAGMENTS = _event_fragments()
_EVENT_NAMES = pa.array(S.EVENT_NAMES, pa.string())


def encode(
    pop: Population,
    rng: np.random.Generator,
    person_base: int,
    user_base: int,
    key: int,
) -> pa.RecordBatch:
    """Build the batch. Events must already be in output order; persons are local indices
    0..n-1 that map to global index `person_base + i`. Identified persons are numbered
    `user-<user_base + 1 + rank>` in local-index order."""
    n_persons = len(pop.country)
    person = pop.person
    identified = pop.identify_ts < np.iinfo(np.int64).max

    anon = anon_ids(person_base + np.arange(n_persons, dtype=np.int64), key)
    user_no = pa.array(user_base + 1 + np.arange(int(identified.sum()), dtype=np.int64))
    user = pc.binary_join_element_wise("user-", user_no.cast(pa.string()), "")
    after_identify = pop.ts >= pop.identify_ts[person]
    person_idx = pa.array(person)
    distinct_id = pc.if_else(
        pa.array(after_identify),
        _scatter(user, identified).take(person_idx),
        anon.take(person_idx),
    )

    combo = (pop.os * len(S.BROWSERS) + pop.browser) * len(S.COUNTRIES) + pop.country
    person_frag = _PERSON_FRAGMENTS.take(pa.array(combo[person]))
    plan_state = np.where(
        pop.ts >= pop.purchase_ts[person], 2 + pop.plan[person], after_identify.astype(np.int64)
    )
    is_purchase = pop.event == S.EV_PURCHASE
    ev_code = (pop.path.astype(np.int64) * len(_PLAN_STATES) + plan_state) * 2 + is_purchase
    event_frag = _EVENT_FRAGMENTS.take(pa.array(ev_code))

    is_ident = pop.event == S.EV_IDENTIFY
    who = person[is_ident]  # each identified person has exactly one $identify event
    ident_user = _scatter(user, identified).take(pa.array(who))
    countries = pa.array([c[0] for c in S.COUNTRIES]).take(pa.array(pop.country[who]))
    browsers = pa.array(S.BROWSERS).take(pa.array(pop.browser[who]))
    ident_frag = pc.binary_join_element_wise(
        ',"$anon_distinct_id":"',
        anon.take(pa.array(who)),
        '","$set":{"email":"',
        ident_user,
        '@example.com","name":"',
        ident_user,
        '","plan":"free"},"$set_once":{"initial_country":"',
        countries,
        '","initial_browser":"',
        browsers,
        '"}',
        "",
    )
    properties = pc.binary_join_element_wise(
        person_frag, _scatter(ident_frag, is_ident), event_frag, ""
    )
    return pa.RecordBatch.from_arrays(
        [
            uuid7_strings(pop.ts, rng),
            _EVENT_NAMES.take(pa.array(pop.event)),
            distinct_id,
            pa.array(pop.ts, pa.timestamp("us", tz="UTC")),
            properties,
        ],
        schema=GENERATED_SCHEMA,
    )
