"""Synthetic series for `promtool test rules`: per SLO, counters that burn its error budget at
a chosen rate, and per alert the cases that must fire and the ones that must stay silent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventlens.observability import rules
from eventlens.observability.metrics import le_label
from eventlens.observability.slo import SLO, LatencySLI, SLOFile

PER_MINUTE = 1000  # valid events per minute in every synthetic series


@dataclass(frozen=True)
class SeriesShape:
    """Labels of the series that make up one SLI: good events, bad events, and events the SLI
    must ignore (every one of them bad, so counting them would fire the alert)."""

    good: str
    bad: str
    ignored: tuple[str, ...]


# One entry per SLO of slos.yaml (a test fails when an SLO has none). Ratio SLIs: counter
# series; latency SLIs: the label set of the histogram's series.
SHAPES: dict[str, SeriesShape] = {
    "capture-availability": SeriesShape(
        good='eventlens_capture_requests_total{family="posthog",status="200"}',
        bad='eventlens_capture_requests_total{family="segment",status="503"}',
        # (A posthog 400 is a valid request answered well: a good event, not an ignored one.)
        ignored=('eventlens_capture_requests_total{family="flags",status="500"}',),
    ),
    "capture-latency": SeriesShape(good="", bad="", ignored=()),
    "ingest-freshness": SeriesShape(good="", bad="", ignored=()),
    "query-availability": SeriesShape(
        good='eventlens_query_seconds_count{engine="parallel",kind="trends",outcome="ok",cache="hit"}',
        bad='eventlens_query_seconds_count{engine="parallel",kind="funnels",outcome="timeout",cache="miss"}',
        ignored=(
            'eventlens_query_seconds_count{engine="parallel",kind="trends",outcome="invalid",cache="off"}',
        ),
    ),
    "query-latency": SeriesShape(
        good='engine="parallel",kind="trends",outcome="ok",cache="hit"',
        bad="",
        ignored=('engine="parallel",kind="trends",outcome="invalid",cache="miss"',),
    ),
}


def _counter(per_minute: list[float]) -> str:
    """A counter's samples, one a minute, growing by per_minute[i] in minute i."""
    total, out = 0.0, ["0"]
    for step in per_minute:
        total += step
        out.append(f"{total:g}")
    return " ".join(out)


def burn_series(slo: SLO, burns: list[float]) -> list[dict[str, str]]:
    """Series (1-minute samples) whose error ratio in minute i is burns[i] x the budget."""
    bad_shares = [min(1.0, b * slo.error_budget) for b in burns]
    bad = [PER_MINUTE * s for s in bad_shares]
    good = [PER_MINUTE * (1 - s) for s in bad_shares]
    valid, none = [float(PER_MINUTE)] * len(burns), [0.0] * len(burns)
    shape = SHAPES[slo.name]
    sli = slo.sli
    if isinstance(sli, LatencySLI):
        le = f'le="{le_label(sli.threshold_seconds)}"'
        labels = [shape.good] if shape.good else [""]
        out = []
        for base in labels:
            out += [
                {
                    "series": f"{sli.metric}_count{{{base}}}",
                    "values": _counter(valid),
                },
                {
                    "series": f"{sli.metric}_bucket{{{','.join(p for p in (base, le) if p)}}}",
                    "values": _counter(good),
                },
            ]
        for ignored in shape.ignored:  # all slow: counting them would burn the budget
            out += [
                {
                    "series": f"{sli.metric}_count{{{ignored}}}",
                    "values": _counter(valid),
                },
                {
                    "series": f"{sli.metric}_bucket{{{ignored},{le}}}",
                    "values": _counter(none),
                },
            ]
        return out
    return [
        {"series": shape.good, "values": _counter(good)},
        {"series": shape.bad, "values": _counter(bad)},
        *({"series": s, "values": _counter(valid)} for s in shape.ignored),
    ]


def _expected(rule_file: dict[str, Any], alert: str, severities: list[str]) -> list[dict[str, Any]]:
    """exp_alerts for `alert` firing with `severities`: the rule's own labels and annotations
    (so the test also checks every firing alert carries its runbook_url)."""
    out = []
    for group in rule_file["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert and rule["labels"]["severity"] in severities:
                out.append(
                    {
                        "exp_labels": dict(rule["labels"]),
                        "exp_annotations": dict(rule["annotations"]),
                    }
                )
    assert len(out) == len(severities), (alert, severities)
    return out


def burn_tests(slos: SLOFile, rule_file: dict[str, Any]) -> list[dict[str, Any]]:
    """Per SLO: a fast burn pages (and tickets), a slow burn only tickets; a budget-respecting
    series stays silent, even through a short spike that only the 5m window sees."""
    tests = []
    for slo in slos.slos:
        alert = rules.alert_name(slo)
        # Six quiet hours, then three minutes at 30x: the 5m window burns (18x), every long
        # window stays under its factor (1h 2x, 30m 3.5x, 2h 1.2x, 6h 0.75x).
        spike = [0.5] * 360 + [30.0] * 3 + [0.5] * 57
        cases: list[tuple[str, list[float], list[tuple[int, list[str]]]]] = [
            # 20x: above 14.4x over 1h and 5m -> page; 3x over 1d and 2h -> ticket too.
            ("20x budget burn", [20.0] * 70, [(70, ["page", "ticket"])]),
            # 2x: under the page factors and under 3x, above 1x over 3d and 6h -> ticket only.
            ("2x budget burn", [2.0] * 120, [(30, ["ticket"]), (120, ["ticket"])]),
            # 0.5x with a 3-minute spike at 30x -> silent, during and after the spike.
            ("0.5x budget burn with a short spike", spike, [(180, []), (364, []), (420, [])]),
        ]
        for label, burns, evals in cases:
            tests.append(
                {
                    "name": f"{alert}: {label}",
                    "interval": "1m",
                    "input_series": burn_series(slo, burns),
                    "alert_rule_test": [
                        {
                            "eval_time": f"{at}m",
                            "alertname": alert,
                            "exp_alerts": _expected(rule_file, alert, severities),
                        }
                        for at, severities in evals
                    ],
                }
            )
    return tests


def symptom_tests(rule_file: dict[str, Any]) -> list[dict[str, Any]]:
    stalled, looping = rules.STALLED_ALERT, rules.CRASH_LOOP_ALERT
    return [
        {
            "name": "ingest stalled: the lag grows a minute per minute",
            "interval": "1m",
            "input_series": [{"series": "eventlens_ingest_lag_seconds", "values": "0+60x30"}],
            "alert_rule_test": [
                {"eval_time": "12m", "alertname": stalled, "exp_alerts": []},  # pending
                {
                    "eval_time": "20m",
                    "alertname": stalled,
                    "exp_alerts": _expected(rule_file, stalled, ["page"]),
                },
            ],
        },
        {
            "name": "ingest healthy: a short lag spike and a steady small lag",
            "interval": "1m",
            "input_series": [
                {"series": "eventlens_ingest_lag_seconds", "values": "1 2 1 400 500 600 2 1+0x30"}
            ],
            "alert_rule_test": [
                {"eval_time": f"{m}m", "alertname": stalled, "exp_alerts": []} for m in (4, 6, 20)
            ],
        },
        {
            "name": "consumer crash-looping: three restarts in three minutes",
            "interval": "1m",
            "input_series": [
                {"series": "eventlens_ingest_consumer_restarts_total", "values": "0 0 1 2 3 3 3 3"}
            ],
            "alert_rule_test": [
                {"eval_time": "1m", "alertname": looping, "exp_alerts": []},
                {
                    "eval_time": "5m",
                    "alertname": looping,
                    "exp_alerts": _expected(rule_file, looping, ["page"]),
                },
            ],
        },
        {
            "name": "consumer restarted now and then: not a loop",
            "interval": "1m",
            "input_series": [
                {
                    "series": "eventlens_ingest_consumer_restarts_total",
                    "values": "0+0x19 1+0x19 2+0x19 3+0x19",
                }
            ],
            "alert_rule_test": [
                {"eval_time": f"{m}m", "alertname": looping, "exp_alerts": []}
                for m in (10, 25, 45, 70)
            ],
        },
    ]
