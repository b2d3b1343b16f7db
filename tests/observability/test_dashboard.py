"""The Grafana dashboard: provisionable JSON, and every series it queries exists, on /metrics
or as a recording rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import Metric

from eventlens.observability import dashboard, metrics, rules, slo

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_SERIES = re.compile(r"\b(eventlens_[a-z0-9_]+|slo:[a-z0-9_:]+)")
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
}


def _exposed(family: Metric) -> set[str]:
    return {family.name + s for s in _SUFFIXES.get(family.type, ("",))}


def known_series() -> set[str]:
    exposed = {n for f in metrics.REGISTRY.collect() for n in _exposed(f)}
    recorded = {
        r["record"] for g in rules.rules(slo.load())["groups"] for r in g["rules"] if "record" in r
    }
    return exposed | recorded


def test_every_series_the_dashboard_queries_exists() -> None:
    board = dashboard.dashboard(slo.load())
    used = {m for expr in dashboard.expressions(board) for m in _SERIES.findall(expr)}
    assert len(used) > 20
    assert used - known_series() == set()


def test_the_series_check_can_fail() -> None:
    assert "eventlens_query_seconds_bucket" in known_series()
    assert "eventlens_query_seconds_total" not in known_series()  # a histogram has no _total
    assert "slo:sli_error:ratio_rate28d" in known_series()


def test_checked_in_dashboard_is_provisionable() -> None:
    board = json.loads((DEPLOY / "eventlens-dashboard.json").read_text())
    assert board["uid"] and board["id"] is None and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24
    titles = " ".join(p["title"] for p in board["panels"])
    for s in slo.load().slos:
        assert f"{s.name}: error budget left" in titles
    provider = (DEPLOY / "grafana-dashboards.yaml").read_text()
    assert "providers:" in provider
