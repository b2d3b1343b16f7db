"""A second generator with another shape (issue 13): a B2B tool used by a few heavy accounts.

Where the default generator (`core`, `shape`) models many anonymous visitors with short
sessions, this one differs in every axis a query engine feels:

- skew: persons' activity is Pareto-distributed (alpha 1.1), so a few power users hold most
  events, and a person's events cluster in long sessions (exponential gaps, mean 4 minutes,
  20-200 events per session);
- properties: `$browser` has a long tail of versioned names (`Chrome 131`, ...) and is missing
  or empty on ~12% of events (the null breakdown row), plus `plan`, `org_id`, `country` (EU
  heavy) and a `revenue` that is sometimes numeric text;
- encodings: written as an export would be, uuids as 16 raw bytes (FixedSizeBinary(16)) and a
  native timestamp column, `properties` as JSON text, so it goes through `eventlens import`'s
  binary-uuid path.

It keeps the names the benchmark mix queries (`$pageview`, `signup`, `purchase`, `$browser`,
`country`, `revenue`), so `bench query --data` answers are not empty. Same seed, same bytes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from eventlens.errors import InvalidInput
from eventlens.generate.shape import DEFAULT_END, US_PER_DAY

SAAS_SCHEMA = pa.schema(
    [
        pa.field("uuid", pa.binary(16), nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("distinct_id", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("properties", pa.string(), nullable=False),
    ]
)
EVENTS = ["$pageview", "signup", "purchase", "query_run", "dashboard_saved", "export_csv",
          "member_invited", "alert_fired", "api_call", "$autocapture"]  # fmt: skip
EVENT_P = np.array([0.42, 0.015, 0.01, 0.18, 0.05, 0.03, 0.02, 0.045, 0.15, 0.08])
BROWSER_FAMILIES = ["Chrome", "Firefox", "Safari", "Edge", "Arc", "Brave", "Vivaldi", "Opera"]
COUNTRIES = ["DE", "FR", "NL", "GB", "PL", "SE", "US", "ES", "IT", "CH"]
COUNTRY_P = np.array([0.22, 0.14, 0.10, 0.12, 0.08, 0.06, 0.12, 0.06, 0.06, 0.04])
PLANS = ["free", "team", "business", "enterprise"]
EVENTS_PER_PERSON = 60


def generate_saas(
    n_events: int, seed: int = 7, end: datetime | None = None, days: int = 90
) -> pa.Table:
    """`n_events` events of the SaaS shape over `days` days ending at `end` (default the
    default generator's fixed end), sorted by time. Raises InvalidInput for bad arguments."""
    if n_events < 0 or days < 1:
        raise InvalidInput("events must be >= 0 and days >= 1", field="events")
    rng = np.random.default_rng(seed)
    end_us = int(
        ((end or DEFAULT_END) - datetime(1970, 1, 1, tzinfo=DEFAULT_END.tzinfo))
        // timedelta(microseconds=1)
    )
    start_us = end_us - days * US_PER_DAY
    n_persons = max(1, n_events // EVENTS_PER_PERSON)
    weight = rng.pareto(1.1, n_persons) + 1.0
    n_sessions = max(1, n_events // 60)
    session_person = rng.choice(n_persons, n_sessions, p=weight / weight.sum())
    session_start = start_us + (rng.beta(2.0, 1.2, n_sessions) * (end_us - start_us)).astype(
        np.int64
    )
    session_of = np.sort(rng.integers(0, n_sessions, n_events))
    gaps = rng.exponential(240e6, n_events).astype(np.int64)  # µs, mean 4 minutes
    # Offset of each event inside its session: the running sum of gaps within the session.
    csum = np.cumsum(gaps)
    first = np.searchsorted(session_of, session_of, side="left")
    offset = csum - csum[first]
    ts = np.minimum(session_start[session_of] + offset, end_us - 1)
    person = session_person[session_of]
    event = rng.choice(len(EVENTS), n_events, p=EVENT_P / EVENT_P.sum())
    version = rng.integers(100, 132, n_events)
    family = rng.choice(
        len(BROWSER_FAMILIES), n_events, p=np.array([8, 3, 3, 2, 1, 1, 0.5, 0.5]) / 19
    )
    missing = rng.random(n_events)
    country = rng.choice(len(COUNTRIES), n_persons, p=COUNTRY_P / COUNTRY_P.sum())
    plan = rng.choice(len(PLANS), n_persons, p=[0.5, 0.3, 0.15, 0.05])
    revenue = rng.choice([49, 99, 499, 1999], n_events)
    props = []
    for i in range(n_events):
        p = int(person[i])
        obj: dict[str, object] = {
            "country": COUNTRIES[country[p]],
            "plan": PLANS[plan[p]],
            "org_id": f"org_{p % max(1, n_persons // 8)}",
        }
        if missing[i] >= 0.12:
            obj["$browser"] = f"{BROWSER_FAMILIES[family[i]]} {version[i]}"
        elif missing[i] < 0.04:
            obj["$browser"] = ""
        if event[i] == 2:
            obj["revenue"] = str(revenue[i]) if missing[i] < 0.3 else int(revenue[i])
        props.append(orjson.dumps(obj).decode())
    order = np.argsort(ts, kind="stable")
    raw = rng.integers(0, 256, (n_events, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    uuids = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), n_events, [None, pa.py_buffer(raw[order].tobytes())]
    )
    names = np.array(EVENTS, dtype=object)[event[order]]
    ids = np.array([f"user_{p}" for p in range(n_persons)], dtype=object)[person[order]]
    return pa.table(
        [
            uuids,
            pa.array(names, pa.string()),
            pa.array(ids, pa.string()),
            pa.array(ts[order], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            pa.array([props[i] for i in order], pa.string()),
        ],
        schema=SAAS_SCHEMA,
    )


def write_saas(
    path: Path, n_events: int, seed: int = 7, end: datetime | None = None, days: int = 90
) -> int:
    """Write the SaaS shape to a Parquet file (the encodings an export uses); returns rows."""
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise InvalidInput(f"the saas shape writes Parquet: name {path} .parquet", field="out")
    table = generate_saas(n_events, seed=seed, end=end, days=days)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return int(table.num_rows)
