"""Prometheus rules from the SLO declaration: Sloth-style recording rules and the SRE workbook's
multi-window, multi-burn-rate alerts, plus the symptom alerts (docs/adr/0010-slos-and-alerts.md).

Per SLO, recording rules `slo:sli_error:ratio_rate<W>` (W in 5m 30m 1h 2h 6h 1d 3d, and the SLO
window, e.g. 28d, as the mean of the 5m ratio), the objective and budget as constants, and the
burn rates. One alert per SLO, `EventLens<Slo>BudgetBurn`, in two rules told apart by
`severity`: page (14.4x over 1h and 5m, or 6x over 6h and 30m) and ticket (3x over 1d and 2h,
or 1x over 3d and 6h). `time_scale` divides every window and duration (the end-to-end test
runs an hour in a minute); rule names keep their nominal windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from eventlens.observability.metrics import le_label
from eventlens.observability.slo import SLO, LatencySLI, SLOFile, duration_seconds

# (nominal window of the long and the short rate, burn-rate factor) per severity; the SRE
# workbook's table for a 30-day SLO (chapter 5, "Multiwindow, multi-burn-rate alerts").
BURN_WINDOWS: dict[str, tuple[tuple[str, str, float], ...]] = {
    "page": (("1h", "5m", 14.4), ("6h", "30m", 6.0)),
    "ticket": (("1d", "2h", 3.0), ("3d", "6h", 1.0)),
}
RATE_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
STALLED_ALERT = "EventLensIngestStalled"
CRASH_LOOP_ALERT = "EventLensConsumerCrashLooping"


@dataclass(frozen=True)
class Scale:
    """Divides every window and duration by `factor` (1 = real time)."""

    factor: float = 1.0

    def seconds(self, nominal: str | float) -> float:
        raw = duration_seconds(nominal) if isinstance(nominal, str) else float(nominal)
        return raw / self.factor

    def duration(self, nominal: str) -> str:
        """A Prometheus duration for `nominal` / factor, in whole seconds (at least 1 s)."""
        if self.factor == 1:
            return nominal
        return f"{max(1, round(self.seconds(nominal)))}s"


def alert_name(slo: SLO) -> str:
    """`capture-availability` -> `EventLensCaptureAvailabilityBudgetBurn`."""
    return "EventLens" + "".join(p.capitalize() for p in slo.name.split("-")) + "BudgetBurn"


def alert_names(slos: SLOFile) -> list[str]:
    """Every alert the rules define (each has a runbook: docs/runbooks/<name>.md)."""
    return [*(alert_name(s) for s in slos.slos), STALLED_ALERT, CRASH_LOOP_ALERT]


def _selector(*parts: str) -> str:
    inner = ",".join(p for p in parts if p)
    return "{" + inner + "}" if inner else ""


def error_ratio_expr(slo: SLO, window: str) -> str:
    """PromQL of the SLI's error ratio over `window` (a Prometheus duration)."""
    sli = slo.sli
    if isinstance(sli, LatencySLI):
        le = f'le="{le_label(sli.threshold_seconds)}"'
        total = f"sum(rate({sli.metric}_count{_selector(sli.total)}[{window}]))"
        good = f"sum(rate({sli.metric}_bucket{_selector(sli.total, le)}[{window}]))"
        return f"({total} - {good}) / {total}"
    # No error series at all (no 5xx since start) is a ratio of 0, not an absent one.
    errors = f"(sum(rate({sli.metric}{_selector(sli.errors)}[{window}])) or vector(0))"
    return f"{errors} / sum(rate({sli.metric}{_selector(sli.total)}[{window}]))"


def _labels(slos: SLOFile, slo: SLO) -> dict[str, str]:
    return {
        "sloth_id": f"{slos.service}-{slo.name}",
        "sloth_service": slos.service,
        "sloth_slo": slo.name,
    }


def _match(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _recording_group(slos: SLOFile, slo: SLO, scale: Scale) -> dict[str, Any]:
    labels = _labels(slos, slo)
    period = f"{slos.window_days}d"
    rules: list[dict[str, Any]] = [
        {
            "record": f"slo:sli_error:ratio_rate{w}",
            "expr": error_ratio_expr(slo, scale.duration(w)),
            "labels": labels,
        }
        for w in RATE_WINDOWS
    ]
    sel = _match(labels)
    rules += [
        {
            "record": f"slo:sli_error:ratio_rate{period}",
            "expr": f"sum_over_time(slo:sli_error:ratio_rate5m{sel}[{scale.duration(period)}])"
            f" / count_over_time(slo:sli_error:ratio_rate5m{sel}"
            f"[{scale.duration(period)}])",
            "labels": labels,
        },
        {"record": "slo:objective:ratio", "expr": f"vector({slo.objective!r})", "labels": labels},
        {
            "record": "slo:error_budget:ratio",
            "expr": f"vector(1 - {slo.objective!r})",
            "labels": labels,
        },
        {"record": "slo:time_period:days", "expr": f"vector({slos.window_days})", "labels": labels},
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate5m{sel} / on (sloth_id, sloth_slo, sloth_service)"
            f" group_left slo:error_budget:ratio{sel}",
            "labels": labels,
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate{period}{sel} / on (sloth_id, sloth_slo,"
            f" sloth_service) group_left slo:error_budget:ratio{sel}",
            "labels": labels,
        },
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - slo:period_burn_rate:ratio{sel}",
            "labels": labels,
        },
    ]
    return {"name": f"slo-{slos.service}-{slo.name}", "rules": rules}


def _burn_alert(slos: SLOFile, slo: SLO, severity: str, base_url: str) -> dict[str, Any]:
    sel = _match(_labels(slos, slo))
    budget = slo.error_budget
    clauses = [
        f"(slo:sli_error:ratio_rate{long}{sel} > ({factor!r} * {budget:.6g})"
        f" and slo:sli_error:ratio_rate{short}{sel} > ({factor!r} * {budget:.6g}))"
        for long, short, factor in BURN_WINDOWS[severity]
    ]
    windows = " or ".join(f"{f:g}x over {lo} and {sh}" for lo, sh, f in BURN_WINDOWS[severity])
    name = alert_name(slo)
    return {
        "alert": name,
        "expr": " or ".join(clauses),
        "labels": {"severity": severity, "sloth_severity": severity, **_labels(slos, slo)},
        "annotations": {
            "summary": f"{slo.name}: the error budget is burning too fast ({windows})",
            "description": f"{slo.description} Objective {slo.objective:.4g} over "
            f"{slos.window_days} days. Budget burn now: slo:current_burn_rate:ratio.",
            "runbook_url": f"{base_url}/{name}.md",
        },
    }


def _symptom_group(slos: SLOFile, scale: Scale, base_url: str) -> dict[str, Any]:
    sym = slos.symptoms
    lag = scale.seconds(sym.ingest_stalled_lag_seconds)
    return {
        "name": f"{slos.service}-symptoms",
        "rules": [
            {
                "alert": STALLED_ALERT,
                "expr": f"max(eventlens_ingest_lag_seconds) > {lag:g}",
                "for": scale.duration(sym.ingest_stalled_for),
                "labels": {"severity": "page"},
                "annotations": {
                    "summary": "Ingest is stalled: acknowledged events are not reaching the "
                    "event tables",
                    "description": "The oldest acknowledged event not yet queryable is older "
                    f"than {sym.ingest_stalled_lag_seconds:g} s (eventlens_ingest_lag_seconds) "
                    f"for {sym.ingest_stalled_for}.",
                    "runbook_url": f"{base_url}/{STALLED_ALERT}.md",
                },
            },
            {
                "alert": CRASH_LOOP_ALERT,
                "expr": "increase(eventlens_ingest_consumer_restarts_total"
                f"[{scale.duration(sym.crash_loop_window)}]) >= {sym.crash_loop_restarts}",
                "labels": {"severity": "page"},
                "annotations": {
                    "summary": "The ingest consumer is crash-looping",
                    "description": f"At least {sym.crash_loop_restarts} consumer restarts "
                    f"within {sym.crash_loop_window} (eventlens_ingest_consumer_restarts_total).",
                    "runbook_url": f"{base_url}/{CRASH_LOOP_ALERT}.md",
                },
            },
        ],
    }


def rules(
    slos: SLOFile, *, time_scale: float = 1.0, runbook_base_url: str | None = None
) -> dict[str, Any]:
    """The Prometheus rule file (as a dict) for `slos`."""
    scale = Scale(time_scale)
    base = (runbook_base_url or slos.runbook_base_url).rstrip("/")
    groups = [_recording_group(slos, s, scale) for s in slos.slos]
    groups.append(
        {
            "name": f"slo-{slos.service}-alerts",
            "rules": [
                _burn_alert(slos, s, severity, base) for s in slos.slos for severity in BURN_WINDOWS
            ],
        }
    )
    groups.append(_symptom_group(slos, scale, base))
    return {"groups": groups}


class _NoAliases(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no types
    """Writes shared label dicts out in full: a reader greps for a label, not for `*id001`."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(slos: SLOFile, *, time_scale: float = 1.0, runbook_base_url: str | None = None) -> str:
    """The rule file as YAML text (stable: the checked-in copy is compared with it)."""
    header = (
        "# Generated by `eventlens slo render` from eventlens/observability/slos.yaml: do not "
        "edit.\n"
        + (
            f"# Time scale: every window divided by {time_scale:g} (tests only).\n"
            if time_scale != 1
            else ""
        )
    )
    body: str = yaml.dump(
        rules(slos, time_scale=time_scale, runbook_base_url=runbook_base_url),
        Dumper=_NoAliases,
        sort_keys=False,
        width=10_000,
    )
    return header + body
