"""`generate`: exactly N seeded events as a stream of Arrow record batches, in bounded memory.

Chunk k holds exactly `chunk_size` events (the last one the remainder) and is drawn from its own
random stream `(seed, k)`: a fresh population sized for the chunk is simulated, its persons are
kept in order until the chunk is full (the last person cut after its earliest events), and the
chunk is sorted by time. Person and user numbering continue across chunks, so ids are unique
in the whole output. Memory is O(chunk_size), whatever N is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from eventlens.errors import InvalidInput
from eventlens.generate import shape as S
from eventlens.generate.encode import encode
from eventlens.generate.simulate import NO_TS, Population, simulate

DEFAULT_CHUNK_EVENTS = 500_000
# A chunk's properties column must stay under Arrow's 2 GiB string offsets (~400 B per event).
MAX_CHUNK_EVENTS = 2_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise InvalidInput(f"end must be timezone-aware, got naive {dt.isoformat()}", field="end")
    return (dt - _EPOCH) // timedelta(microseconds=1)  # exact: no float seconds


def _merge(pops: list[Population]) -> Population:
    if len(pops) == 1:
        return pops[0]
    base = np.cumsum([0] + [len(p.country) for p in pops[:-1]])
    cat = np.concatenate
    return Population(
        country=cat([p.country for p in pops]),
        os=cat([p.os for p in pops]),
        browser=cat([p.browser for p in pops]),
        identify_ts=cat([p.identify_ts for p in pops]),
        purchase_ts=cat([p.purchase_ts for p in pops]),
        plan=cat([p.plan for p in pops]),
        person=cat([p.person + b for p, b in zip(pops, base, strict=True)]),
        ts=cat([p.ts for p in pops]),
        event=cat([p.event for p in pops]),
        path=cat([p.path for p in pops]),
    )


def _take_events(pop: Population, idx: np.ndarray, n_persons: int) -> Population:
    keep_person = slice(0, n_persons)
    return replace(
        pop,
        country=pop.country[keep_person],
        os=pop.os[keep_person],
        browser=pop.browser[keep_person],
        identify_ts=pop.identify_ts[keep_person],
        purchase_ts=pop.purchase_ts[keep_person],
        plan=pop.plan[keep_person],
        person=pop.person[idx],
        ts=pop.ts[idx],
        event=pop.event[idx],
        path=pop.path[idx],
    )


def draw_chunk(rng: np.random.Generator, target: int, start_us: int, end_us: int) -> Population:
    """Exactly `target` events (target >= 1) of whole persons (the last one possibly cut after
    its earliest events), sorted by time; persons are re-indexed 0..n-1 in order."""
    pops: list[Population] = []
    total = 0
    while total < target:
        n = int((target - total) / S.EVENTS_PER_PERSON * 1.15) + 16
        pops.append(simulate(rng, n, start_us, end_us))
        total += len(pops[-1].ts)
    pop = _merge(pops)

    counts = np.bincount(pop.person, minlength=len(pop.country))
    cum = np.cumsum(counts)
    cut = int(np.searchsorted(cum, target))  # the person whose events complete the chunk
    room = target - (int(cum[cut - 1]) if cut else 0)
    cut_events = np.flatnonzero(pop.person == cut)
    cut_events = cut_events[np.argsort(pop.ts[cut_events], kind="stable")[:room]]
    idx = np.concatenate([np.flatnonzero(pop.person < cut), cut_events])
    idx = idx[np.argsort(pop.ts[idx], kind="stable")]
    out = _take_events(pop, idx, cut + 1)
    # Only persons whose $identify made it into the chunk count as identified.
    has_identify = np.zeros(cut + 1, dtype=bool)
    has_identify[out.person[out.event == S.EV_IDENTIFY]] = True
    out.identify_ts = np.where(has_identify, out.identify_ts, NO_TS)
    return out


def generate(
    n_events: int,
    seed: int = 42,
    end: datetime | None = None,
    days: int = 90,
    chunk_size: int = DEFAULT_CHUNK_EVENTS,
) -> Iterator[pa.RecordBatch]:
    """Yield exactly `n_events` events in record batches of at most `chunk_size` rows.

    Columns: uuid, event, distinct_id, timestamp (timestamp[us, UTC]), properties (JSON object
    text) -- the shape `eventlens import` reads. Timestamps fall in [end - days, end); `end`
    defaults to the fixed `shape.DEFAULT_END`, so the same arguments (chunk_size included)
    give the same bytes.
    Each batch is sorted by time and spans the whole window. Raises InvalidInput for a
    negative count or seed, days < 1, chunk_size outside 1..MAX_CHUNK_EVENTS or a naive `end`.
    """
    if n_events < 0:
        raise InvalidInput(f"n_events must be >= 0, got {n_events}", field="n_events")
    if seed < 0:
        raise InvalidInput(f"seed must be >= 0, got {seed}", field="seed")
    if days < 1:
        raise InvalidInput(f"days must be >= 1, got {days}", field="days")
    if not 1 <= chunk_size <= MAX_CHUNK_EVENTS:
        raise InvalidInput(
            f"chunk_size must be between 1 and {MAX_CHUNK_EVENTS:,}, got {chunk_size}",
            field="chunk_size",
        )
    end_us = _to_us(end or S.DEFAULT_END)
    start_us = end_us - days * S.US_PER_DAY
    key = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])
    return _chunks(n_events, seed, start_us, end_us, chunk_size, key)


def _chunks(
    n_events: int, seed: int, start_us: int, end_us: int, chunk_size: int, key: int
) -> Iterator[pa.RecordBatch]:
    person_base = user_base = 0
    for k, first in enumerate(range(0, n_events, chunk_size)):
        rng = np.random.default_rng([seed, k])
        pop = draw_chunk(rng, min(chunk_size, n_events - first), start_us, end_us)
        yield encode(pop, rng, person_base, user_base, key)
        person_base += len(pop.country)
        user_base += int((pop.identify_ts != NO_TS).sum())
