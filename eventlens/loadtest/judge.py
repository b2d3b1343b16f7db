"""Judge a load-test report against the SLO thresholds: pass or fail, check by check.

Per group (capture, query): availability = share of requests that got a non-5xx answer (a
refused connection or a timeout counts against it, like a 5xx); latency = share of all requests
within the latency threshold (a failed one counts with the time it took). A 4xx means the load
test itself is wrong (a bad token, a rejected body): the run fails and says so rather than count
it either way. A group with no request fails too: nothing was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventlens.loadtest.thresholds import Thresholds

GROUPS = ("capture", "query")


@dataclass(frozen=True)
class Check:
    name: str
    measured: float | None  # a share in [0, 1] (None: nothing to measure)
    objective: float
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measured": self.measured,
            "objective": self.objective,
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass
class Verdict:
    checks: list[Check] = field(default_factory=list)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "stats": self.stats,
        }


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def judge(report: dict[str, Any], thresholds: Thresholds) -> Verdict:
    """The verdict on `report` (eventlens.loadtest.load's output)."""
    verdict = Verdict()
    seconds = float(report.get("seconds") or 0) or 1.0
    for group in GROUPS:
        latency_s = getattr(thresholds, f"{group}_latency_s")
        latency_objective = getattr(thresholds, f"{group}_latency_objective")
        availability = getattr(thresholds, f"{group}_availability")
        total = unavailable = rejected = 0
        latencies: list[float] = []  # of every request, answered or not
        for entry in report.get("endpoints", {}).values():
            if entry["group"] != group:
                continue
            statuses = {int(k): int(v) for k, v in entry["statuses"].items()}
            total += sum(statuses.values())
            unavailable += sum(n for s, n in statuses.items() if s >= 500 or s == 0)
            rejected += sum(n for s, n in statuses.items() if 400 <= s < 500)
            latencies.extend(float(x) for x in entry["latencies_s"])
        if total == 0:
            verdict.checks.append(
                Check(f"{group} requests", None, 1.0, False, f"no {group} request completed")
            )
            continue
        if rejected:
            verdict.checks.append(
                Check(
                    f"{group} rejected (4xx)",
                    rejected / total,
                    0.0,
                    False,
                    f"{rejected} of {total} {group} requests got a 4xx: the load test's token, "
                    "API key or project id is wrong, or the server refused its bodies",
                )
            )
        ok_share = 1 - unavailable / total
        verdict.checks.append(
            Check(
                f"{group} availability",
                ok_share,
                availability,
                ok_share >= availability,
                f"{total - unavailable} of {total} requests answered without a 5xx or a "
                f"connection error (objective {availability:.3%})",
            )
        )
        within = sum(1 for x in latencies if x <= latency_s)
        share = within / len(latencies)
        verdict.checks.append(
            Check(
                f"{group} latency",
                share,
                latency_objective,
                share >= latency_objective,
                f"{within} of {len(latencies)} requests within {latency_s * 1000:g} ms "
                f"(objective {latency_objective:.3%})",
            )
        )
        ordered = sorted(latencies)
        verdict.stats[group] = {
            "requests": total,
            "rps": round(total / seconds, 1),
            "p50_ms": round(_percentile(ordered, 0.50) * 1000, 2),
            "p95_ms": round(_percentile(ordered, 0.95) * 1000, 2),
            "p99_ms": round(_percentile(ordered, 0.99) * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2),
        }
    return verdict
