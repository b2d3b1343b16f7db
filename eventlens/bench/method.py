"""The benchmark's method, apart from the engines: the interleaved schedule, the per-cell load
and CPU record, and the every-cell check of a trends breakdown against a peer's raw counts.

Interleaving: on a shared machine a burst of load must land on every engine alike, so within a
round every engine runs query q before any engine runs q + 1, and the engines' order rotates
from round to round (engine i goes first in round i mod n).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from eventlens.query.semantics.filters import NULL_BREAKDOWN, OTHER_BREAKDOWN, rank_values


def schedule(engines: list[str], queries: list[str], rounds: int) -> Iterator[tuple[int, str, str]]:
    """(round, query, engine) in run order: per round, query by query, every engine once, the
    engine order rotated by one each round."""
    n = len(engines)
    for r in range(rounds):
        order = [engines[(r + i) % n] for i in range(n)] if n else []
        for q in queries:
            for engine in order:
                yield r, q, engine


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Cell:
    """One (engine, query) cell's timed runs, with the machine's state around each."""

    times_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # process CPU (user + sys) per run
    load_1m: list[float] = field(default_factory=list)  # 1-minute load average after each run
    # CPU seconds so far of what the cell runs in; the default is this process, the API mode
    # adds its server's.
    cpu_source: Callable[[], float] = _cpu_s

    def run(self, fn: Callable[[], Any]) -> Any:
        cpu0, t0 = self.cpu_source(), time.perf_counter()
        answer = fn()
        self.times_s.append(time.perf_counter() - t0)
        self.cpu_s.append(self.cpu_source() - cpu0)
        self.load_1m.append(os.getloadavg()[0])
        return answer


@dataclass(frozen=True)
class BreakdownCounts:
    """A peer's raw answer to a trends breakdown of one event with math total and dau.

    `cells`: (day index, value or None) -> (events, distinct persons that day); `totals`:
    value -> (events, distinct persons over the range); `other_persons(folded)`: day -> distinct
    persons whose event had a value in `folded` (the "other" row of a person math is not a sum
    of its values' rows, so the peer is asked for it). Null and "" are one value, None."""

    cells: dict[tuple[int, str | None], tuple[int, int]]
    totals: dict[str | None, tuple[int, int]]
    other_persons: Callable[[set[str | None]], dict[int, int]]


def _label(value: str | None) -> str:
    return NULL_BREAKDOWN if value in (None, "") else str(value)


def breakdown_mismatches(
    peer: BreakdownCounts, ours: list[dict[str, Any]], limit: int
) -> list[str]:
    """Every cell of `ours` (the engine's rows for a total and a dau series) against what the
    peer's counts give under the breakdown rules: the kept values and their order, null, and
    other. Returns what differs (empty: every cell agrees)."""
    problems: list[str] = []
    for col, math in enumerate(("total", "dau")):
        rows = [r for r in ours if r.get("math", "total") == math]
        if not rows:
            continue
        aggregates = {_label(v): float(t[col]) for v, t in peer.totals.items() if t[0] > 0}
        kept, folded = rank_values(aggregates, limit, rank_null=True)
        order = kept + ([OTHER_BREAKDOWN] if folded else [])
        got = [r["breakdown_value"] for r in rows]
        if got != order:
            problems.append(f"{math}: breakdown order {got} != {order}")
            continue
        days = len(rows[0]["data"])
        by_label: dict[str, list[int]] = {}
        for (d, v), t in peer.cells.items():
            if 0 <= d < days:
                by_label.setdefault(_label(v), [0] * days)[d] += t[col]
        other = [0] * days
        if folded:
            if col == 0:
                for label in folded:
                    other = [
                        a + b for a, b in zip(other, by_label.get(label, [0] * days), strict=True)
                    ]
            else:
                raw = {v for v in peer.totals if _label(v) in folded}
                persons = peer.other_persons(raw)
                other = [persons.get(d, 0) for d in range(days)]
        for row in rows:
            label = row["breakdown_value"]
            want = other if label == OTHER_BREAKDOWN else by_label.get(label, [0] * days)
            if list(row["data"]) != want:
                problems.append(f"{math} {label}: {list(row['data'])} != {want}")
    return problems
