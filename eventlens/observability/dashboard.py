"""The Grafana dashboard (provisionable JSON) for the SLOs and the metrics behind them.

Generated with the rules (`eventlens slo render`) so that its SLO panels follow slos.yaml and
its queries use only series that exist: /metrics or the recording rules (a test checks).
Datasource: the `datasource` template variable (any Prometheus data source).
"""

from __future__ import annotations

from typing import Any

from eventlens.observability.slo import SLOFile

_DS = {"type": "prometheus", "uid": "${datasource}"}
_WIDTH = 24


class _Layout:
    """Places panels left to right, wrapping at Grafana's 24 columns."""

    def __init__(self) -> None:
        self.x = self.y = self.row_h = 0
        self.next_id = 1
        self.panels: list[dict[str, Any]] = []

    def row(self, title: str) -> None:
        self.newline()
        self._add({"type": "row", "title": title, "collapsed": False, "panels": []}, _WIDTH, 1)
        self.newline()

    def newline(self) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0

    def _add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > _WIDTH:
            self.newline()
        panel["id"] = self.next_id
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.next_id += 1
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)
        if panel["type"] == "row":
            self.y, self.x, self.row_h = self.y + h, 0, 0

    def panel(
        self,
        title: str,
        targets: list[tuple[str, str]],
        *,
        kind: str = "timeseries",
        unit: str = "short",
        w: int = 8,
        h: int = 7,
        description: str = "",
    ) -> None:
        self._add(
            {
                "type": kind,
                "title": title,
                "description": description,
                "datasource": _DS,
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"reduceOptions": {"calcs": ["lastNotNull"]}} if kind == "stat" else {},
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "datasource": _DS,
                        "expr": expr,
                        "legendFormat": leg,
                    }
                    for i, (expr, leg) in enumerate(targets)
                ],
            },
            w,
            h,
        )


def _quantiles(metric: str, by: str = "", window: str = "5m") -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    label = f"{{{{{by}}}}} " if by else ""
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{window}])))",
            f"{label}p{round(q * 100)}",
        )
        for q in (0.5, 0.99)
    ]


def dashboard(slos: SLOFile) -> dict[str, Any]:
    """The dashboard as a dict (Grafana's JSON model, schemaVersion 39)."""
    lay = _Layout()
    lay.row("SLOs")
    for s in slos.slos:
        sel = f'{{sloth_service="{slos.service}",sloth_slo="{s.name}"}}'
        what = f"objective {s.objective:.4g}" + (
            f", threshold {s.threshold_seconds:g} s" if s.threshold_seconds else ""
        )
        lay.panel(
            f"{s.name}: SLI over {slos.window_days}d",
            [(f"1 - slo:sli_error:ratio_rate{slos.window_days}d{sel}", s.name)],
            kind="stat",
            unit="percentunit",
            w=4,
            h=5,
            description=f"{s.description} ({what})",
        )
        lay.panel(
            f"{s.name}: error budget left",
            [(f"slo:period_error_budget_remaining:ratio{sel}", "remaining")],
            kind="stat",
            unit="percentunit",
            w=4,
            h=5,
        )
        lay.panel(
            f"{s.name}: burn rate",
            [
                (f"slo:current_burn_rate:ratio{sel}", "5m"),
                (f"slo:period_burn_rate:ratio{sel}", f"{slos.window_days}d"),
            ],
            w=16,
            h=5,
            description="1 = spending the budget exactly over the window; page at 14.4 (1h) "
            "or 6 (6h), ticket at 3 (1d) or 1 (3d)",
        )
    lay.row("Capture")
    lay.panel(
        "Capture requests by family and status",
        [
            (
                "sum by (family, status) (rate(eventlens_capture_requests_total[5m]))",
                "{{family}} {{status}}",
            )
        ],
        unit="reqps",
    )
    lay.panel(
        "Capture events by outcome",
        [("sum by (outcome) (rate(eventlens_capture_events_total[5m]))", "{{outcome}}")],
        unit="ops",
    )
    lay.panel("Capture ack latency", _quantiles("eventlens_capture_ack_seconds"), unit="s")
    lay.panel("Ingest log fsync", _quantiles("eventlens_ingest_fsync_seconds"), unit="s")
    lay.panel("Requests per group commit", _quantiles("eventlens_ingest_group_commit_requests"))
    lay.row("Ingest")
    lay.panel(
        "Ingest lag",
        [("max(eventlens_ingest_lag_seconds)", "oldest unapplied event (s)")],
        unit="s",
    )
    lay.panel("Ingest lag bytes", [("max(eventlens_ingest_lag_bytes)", "bytes")], unit="bytes")
    lay.panel(
        "Ingest freshness (ack to queryable)",
        _quantiles("eventlens_ingest_freshness_seconds"),
        unit="s",
    )
    lay.panel(
        "Consumer restarts, quarantines, duplicates",
        [
            ("sum(increase(eventlens_ingest_consumer_restarts_total[15m]))", "restarts (15m)"),
            ("sum(increase(eventlens_ingest_quarantined_records_total[15m]))", "quarantined (15m)"),
            ("sum(rate(eventlens_ingest_duplicates_total[5m]))", "duplicates/s"),
        ],
    )
    lay.panel(
        "Person merges pending",
        [
            ("sum(eventlens_person_merge_pending)", "pending"),
            ("max(eventlens_person_merge_lag_seconds)", "oldest (s)"),
        ],
    )
    lay.row("Queries")
    lay.panel(
        "Query latency by kind",
        _quantiles("eventlens_query_seconds", "kind"),
        unit="s",
        w=12,
    )
    lay.panel(
        "Queries by outcome",
        [("sum by (outcome) (rate(eventlens_query_seconds_count[5m]))", "{{outcome}}")],
        unit="reqps",
        w=12,
    )
    lay.panel(
        # Every served request is in the SLI; this says how much of it the cache answered.
        "Queries by cache result",
        [("sum by (cache) (rate(eventlens_query_seconds_count[5m]))", "{{cache}}")],
        unit="reqps",
        w=12,
    )
    lay.panel(
        "Timeouts and runaway engine threads",
        [
            ("sum(rate(eventlens_query_timeouts_total[5m]))", "timeouts/s"),
            ("max(eventlens_query_runaway)", "runaway threads (hold a worker)"),
        ],
    )
    lay.row("Cache and workers")
    lay.panel(
        "Resident bucket lookups",
        [("sum by (outcome) (rate(eventlens_query_resident_lookups_total[5m]))", "{{outcome}}")],
        unit="ops",
    )
    lay.panel(
        "Resident cache hit ratio",
        [
            (
                'sum(rate(eventlens_query_resident_lookups_total{outcome="hit"}[5m])) / '
                "sum(rate(eventlens_query_resident_lookups_total[5m]))",
                "hit ratio",
            )
        ],
        unit="percentunit",
    )
    lay.panel("Resident memory", [("max(eventlens_query_resident_bytes)", "bytes")], unit="bytes")
    lay.panel(
        "Resident bucket build", _quantiles("eventlens_query_resident_build_seconds"), unit="s"
    )
    lay.panel(
        "Shadow workers",
        [
            ("max(eventlens_shadow_pending)", "pending candidate runs"),
            ("sum by (outcome) (rate(eventlens_shadow_queries_total[5m]))", "{{outcome}}/s"),
        ],
    )
    lay.panel("Shadow engine time", _quantiles("eventlens_shadow_engine_seconds", "role"), unit="s")
    return {
        "uid": f"{slos.service}-slos",
        "title": "EventLens: SLOs and service health",
        "id": None,
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "tags": ["eventlens", "slo"],
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": lay.panels,
    }


def expressions(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
