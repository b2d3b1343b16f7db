"""The shadow report: what was compared, how it went, and whether the candidate may take over.

Counting (docs/shadow-mode.md "Reading the report"):
- `compared` = match + mismatch + nondeterministic + candidate_error + candidate_timeout (the
  queries both engines were asked to answer); shed and primary_error are counted apart.
- `match_rate` = match / compared (None when nothing was compared).
- A mismatch is *explained* when a known-difference rule matches it; explained mismatches are
  listed, never hidden, and do not block the cut-over.

Verdict "ready" needs all of: the comparisons span at least `min_days`, `compared >= min_queries`,
zero unexplained mismatches, zero candidate errors. Everything else is "not ready", with reasons.
Nondeterministic results and timeouts are reported as warnings (they are the primary's problem or
a capacity question, not a wrong answer from the candidate).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventlens.errors import InvalidInput
from eventlens.shadow.store import OUTCOMES, ShadowStore

COMPARED = ("match", "mismatch", "nondeterministic", "candidate_error", "candidate_timeout")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# In a diff location, the keys that vary per query (buckets, breakdown values, cohort dates) are
# generalised; step numbers and retention offsets are kept, they say *which* step or cell.
_GENERALISE = re.compile(r"(series|breakdown|cohort|data)\[[^\]]*\]")


@dataclass(frozen=True)
class Policy:
    """Cut-over policy: minimum days covered, minimum queries compared; unexplained mismatches
    and candidate errors must be zero."""

    min_days: float = 14.0
    min_queries: int = 1000


def parse_since(text: str) -> float:
    """ "7d", "12h", "30m", "2w", "90s" as seconds; InvalidInput (field "since") otherwise."""
    m = _DURATION.match(text)
    if not m:
        raise InvalidInput(
            f"--since {text!r} is not a duration like 7d, 12h, 30m or 2w", field="since"
        )
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def location(path: str) -> str:
    """The diff path with per-query keys generalised: series[$pageview|Chrome].data[2026-11-03]
    -> series[*].data[*]; steps[2].count stays; cohort[2026-11-01].values[3] ->
    cohort[*].values[3]."""
    return _GENERALISE.sub(lambda m: f"{m.group(1)}[*]", path)


def _pct(values: list[float], q: float) -> float | None:
    return None if not values else round(float(np.percentile(np.array(values), q)), 3)


def build_report(
    store: ShadowStore,
    *,
    since_s: float | None = None,
    policy: Policy | None = None,
    projects: set[int] | None = None,
    primary: str | None = None,
    candidate: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The report over comparisons of the last `since_s` seconds (None = all), restricted to
    `projects` (None = all) and to one engine pair: `primary`/`candidate`, by default the pair of
    the most recent comparison. JSON-able; see docs/shadow-mode.md for the fields."""
    policy = policy or Policy()
    now = time.time() if now is None else now
    start = 0.0 if since_s is None else now - since_s
    rows = store.comparisons(start, projects)
    if rows and (primary is None or candidate is None):
        last = rows[-1]
        primary = primary or last["primary_engine"]
        candidate = candidate or last["candidate_engine"]
    rows = [
        r for r in rows if r["primary_engine"] == primary and r["candidate_engine"] == candidate
    ]
    records = [
        d
        for d in store.discrepancies(start, projects)
        if d.primary_engine == primary and d.candidate_engine == candidate
    ]

    outcomes = dict.fromkeys(OUTCOMES, 0)
    for r in rows:
        outcomes[r["outcome"]] += r["n"]
    compared = sum(outcomes[o] for o in COMPARED)
    first = rows[0]["at"] if rows else None
    last_at = rows[-1]["at"] if rows else None
    days = 0.0 if first is None or last_at is None else (last_at - first) / 86400.0

    mismatches = [d for d in records if d.outcome == "mismatch"]
    unexplained = [d for d in mismatches if d.explained_by is None]
    by_kind: Counter[str] = Counter(d.kind for d in unexplained)
    by_location: Counter[str] = Counter()
    for d in unexplained:
        for loc in {location(x["path"]) for x in d.diff}:
            by_location[loc] += 1

    reasons: list[str] = []
    if days < policy.min_days:
        reasons.append(f"{days:.1f} days of comparisons, the policy needs {policy.min_days:g}")
    if compared < policy.min_queries:
        reasons.append(f"{compared} queries compared, the policy needs {policy.min_queries}")
    if unexplained:
        reasons.append(f"{len(unexplained)} unexplained mismatch(es)")
    if outcomes["candidate_error"]:
        reasons.append(f"{outcomes['candidate_error']} candidate error(s)")
    warnings: list[str] = []
    if outcomes["nondeterministic"]:
        warnings.append(f"{outcomes['nondeterministic']} nondeterministic primary result(s)")
    if outcomes["candidate_timeout"]:
        warnings.append(f"{outcomes['candidate_timeout']} candidate timeout(s)")
    if outcomes["shed"]:
        warnings.append(f"{outcomes['shed']} shed (not compared): raise shadow_workers/queue")

    return {
        "window": {
            "since": None if since_s is None else start,
            "until": now,
            "first": first,
            "last": last_at,
            "days": round(days, 3),
        },
        "primary": primary,
        "candidate": candidate,
        "compared": compared,
        "match_rate": None if compared == 0 else outcomes["match"] / compared,
        "outcomes": outcomes,
        "mismatches": {
            "total": len(mismatches),
            "explained": len(mismatches) - len(unexplained),
            "unexplained": len(unexplained),
            "by_kind": dict(by_kind.most_common()),
            "by_location": dict(by_location.most_common()),
        },
        "latency_ms": {
            role: {
                "engine": name,
                "p50": _pct([r[col] for r in rows if r[col] is not None], 50),
                "p99": _pct([r[col] for r in rows if r[col] is not None], 99),
            }
            for role, name, col in (
                ("primary", primary, "primary_ms"),
                ("candidate", candidate, "candidate_ms"),
            )
        },
        "records": [
            {
                "id": d.id,
                "at": d.at,
                "project": d.project,
                "kind": d.kind,
                "outcome": d.outcome,
                "first_diff": d.diff[0] if d.diff else None,
                "diff_count": d.diff_count,
                "error": d.error,
                "explained_by": d.explained_by,
                "reason": d.reason,
            }
            for d in records[-50:]
        ],
        "policy": {"min_days": policy.min_days, "min_queries": policy.min_queries},
        "verdict": "ready" if not reasons else "not ready",
        "reasons": reasons,
        "warnings": warnings,
    }
