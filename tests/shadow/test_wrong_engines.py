"""Deliberately wrong candidates are caught, pinned to the exact step / bucket / cell, and the
verdict is "not ready"; a correct candidate, or a rule that explains the difference, is not
blamed."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from eventlens.cli.main import app
from eventlens.query.service import QueryService
from eventlens.shadow.report import Policy, build_report
from eventlens.shadow.store import Discrepancy, ShadowStore
from eventlens.shadow.wiring import shadow_of
from tests.shadow.conftest import Shadowed, day
from tests.shadow.engines import (
    DauPerDistinctId,
    FunnelWindowOffByOneSecond,
    ReferenceCandidate,
    WeekStartsOnWrongDay,
)

RANGE = {"date_from": "2026-11-01", "date_to": "2026-11-21"}
FUNNEL = {
    "kind": "FunnelsQuery",
    "series": [{"kind": "EventsNode", "event": "a"}, {"kind": "EventsNode", "event": "b"}],
    "funnelsFilter": {"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "hour"},
    "dateRange": RANGE,
}
DAU = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
    "interval": "day",
    "dateRange": RANGE,
}
WEEKLY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "interval": "week",
    "dateRange": RANGE,
}


def _store(service: QueryService) -> ShadowStore:
    assert shadow_of(service) is not None
    return shadow_of(service).store


def _only_record(env: Shadowed, service: QueryService) -> Discrepancy:
    assert shadow_of(service) is not None and shadow_of(service).drain(30)
    records = _store(service).discrepancies()
    assert len(records) == 1, records
    return records[0]


def test_funnel_window_off_by_one_second_points_at_the_step(shadowed: Shadowed) -> None:
    t = day("2026-11-03T10:00:00")
    shadowed.append(
        [
            {"event": "a", "distinct_id": "p1", "timestamp": t},
            {"event": "b", "distinct_id": "p1", "timestamp": t + timedelta(hours=1)},  # edge
            {"event": "a", "distinct_id": "p2", "timestamp": t},
            {"event": "b", "distinct_id": "p2", "timestamp": t + timedelta(minutes=5)},
        ]
    )
    service = shadowed.service(FunnelWindowOffByOneSecond())
    answer = service.run_sync(shadowed.project.id, FUNNEL, engine="reference").results
    assert [s["count"] for s in answer] == [2, 2]  # the user got the primary's answer

    record = _only_record(shadowed, service)
    assert record.outcome == "mismatch" and record.kind == "FunnelsQuery"
    counts = {d["path"]: d for d in record.diff}
    assert counts["steps[1].count"]["expected"] == 2 and counts["steps[1].count"]["got"] == 1
    assert all(p.startswith("steps[1].") for p in counts), counts  # step 0 agrees
    assert record.query == FUNNEL and record.fingerprint
    assert record.primary_engine == "reference"
    assert record.candidate_engine == "test-wrong-funnel-window"
    assert record.primary_ms is not None and record.candidate_ms is not None

    report = build_report(_store(service), policy=Policy(min_days=0, min_queries=1))
    assert report["verdict"] == "not ready"
    assert report["mismatches"]["by_kind"] == {"FunnelsQuery": 1}
    assert "steps[1].count" in report["mismatches"]["by_location"]
    assert any("unexplained" in r for r in report["reasons"])


def test_dau_per_distinct_id_points_at_the_bucket(shadowed: Shadowed) -> None:
    shadowed.append(
        [
            # one person, two devices, the same day: dau 1, not 2
            {
                "event": "$pageview",
                "distinct_id": "phone",
                "person": "ann",
                "timestamp": day("2026-11-03"),
            },
            {
                "event": "$pageview",
                "distinct_id": "laptop",
                "person": "ann",
                "timestamp": day("2026-11-03"),
            },
            {"event": "$pageview", "distinct_id": "bob", "timestamp": day("2026-11-02")},
        ]
    )
    service = shadowed.service(DauPerDistinctId())
    service.run_sync(shadowed.project.id, DAU, engine="reference")
    record = _only_record(shadowed, service)
    diff = {d["path"]: (d["expected"], d["got"]) for d in record.diff}
    assert diff["series[$pageview].data[2026-11-03]"] == (1, 2)
    assert set(diff) == {"series[$pageview].data[2026-11-03]", "series[$pageview].count"}
    report = build_report(_store(service), policy=Policy(min_days=0, min_queries=1))
    assert report["verdict"] == "not ready"
    assert report["mismatches"]["by_location"] == {
        "series[*].data[*]": 1,
        "series[*].count": 1,
    }


def test_week_starting_on_the_wrong_day_points_at_the_buckets(shadowed: Shadowed) -> None:
    # 2026-11-01 is a Sunday; the project's weeks start on Sunday.
    shadowed.append(
        [
            {"event": "$pageview", "distinct_id": "u", "timestamp": day(f"2026-11-{d:02d}")}
            for d in (1, 4, 8, 15)
        ]
    )
    service = shadowed.service(WeekStartsOnWrongDay())
    service.run_sync(shadowed.project.id, WEEKLY, engine="reference")
    record = _only_record(shadowed, service)
    diff = {d["path"]: (d["expected"], d["got"]) for d in record.diff}
    assert diff["series[$pageview].data[2026-11-01]"] == (2, "<missing>")
    assert diff["series[$pageview].data[2026-11-02]"] == ("<missing>", 2)  # 4th + 8th
    report = build_report(_store(service), policy=Policy(min_days=0, min_queries=1))
    assert report["verdict"] == "not ready"


def test_correct_candidate_matches_and_rules_explain_without_hiding(shadowed: Shadowed) -> None:
    t = day("2026-11-03T10:00:00")
    shadowed.append(
        [
            {"event": "a", "distinct_id": "p1", "timestamp": t},
            {"event": "b", "distinct_id": "p1", "timestamp": t + timedelta(hours=1)},
            {"event": "$pageview", "distinct_id": "p1", "timestamp": t},
        ]
    )
    good = shadowed.service(ReferenceCandidate())
    for q in (FUNNEL, DAU, WEEKLY):
        good.run_sync(shadowed.project.id, q, engine="reference")
    assert shadow_of(good) is not None and shadow_of(good).drain(30)
    report = build_report(shadow_of(good).store, policy=Policy(min_days=0, min_queries=3))
    assert report["outcomes"]["match"] == 3 and report["match_rate"] == 1.0
    assert report["verdict"] == "ready", report["reasons"]
    assert (
        build_report(shadow_of(good).store, policy=Policy(min_days=1, min_queries=3))["verdict"]
        == "not ready"
    )  # too few days

    bad = shadowed.service(FunnelWindowOffByOneSecond())
    bad.run_sync(shadowed.project.id, FUNNEL, engine="reference")
    assert shadow_of(bad) is not None and shadow_of(bad).drain(30)
    store = shadow_of(bad).store
    rule = store.add_rule(
        kind="FunnelsQuery",
        shape={"funnelsFilter": {"funnelWindowIntervalUnit": "hour"}},
        path_glob="steps[[]1].*",
        reason="window edge: the candidate excludes the last second (accepted, ticket 42)",
    )
    report = build_report(store, policy=Policy(min_days=0, min_queries=1))
    assert report["mismatches"] | {"by_kind": {}, "by_location": {}} == {
        "total": 1,
        "explained": 1,
        "unexplained": 0,
        "by_kind": {},
        "by_location": {},
    }
    assert report["records"][0]["explained_by"] == rule  # listed, not hidden
    assert report["verdict"] == "ready"
    store.remove_rule(rule)
    assert build_report(store, policy=Policy(min_days=0, min_queries=1))["verdict"] == "not ready"


def test_cli_report_and_replay_of_a_record(shadowed: Shadowed) -> None:
    shadowed.append(
        [
            {
                "event": "$pageview",
                "distinct_id": "phone",
                "person": "ann",
                "timestamp": day("2026-11-03"),
            },
            {
                "event": "$pageview",
                "distinct_id": "laptop",
                "person": "ann",
                "timestamp": day("2026-11-03"),
            },
        ]
    )
    service = shadowed.service(DauPerDistinctId())
    service.run_sync(shadowed.project.id, DAU, engine="reference")
    record = _only_record(shadowed, service)
    # Ingestion after the query: replay must still read the recorded version.
    shadowed.append(
        [
            {
                "event": "$pageview",
                "distinct_id": "tablet",
                "person": "ann",
                "timestamp": day("2026-11-03"),
            }
        ]
    )
    runner = CliRunner()
    data_dir = str(shadowed.settings.data_dir)
    out = runner.invoke(app, ["shadow", "replay", str(record.id), "--json", "--data-dir", data_dir])
    assert out.exit_code == 1, out.output  # still a mismatch
    assert '"series[$pageview].data[2026-11-03]"' in out.output
    assert f'"data_version": {record.data_version}' in out.output
    assert '"got": 2' in out.output  # 2 distinct ids at that version, not 3

    out = runner.invoke(
        app, ["shadow", "report", "--min-days", "0", "--min-queries", "1", "--data-dir", data_dir]
    )
    assert out.exit_code == 1 and "verdict: not ready" in out.output
    out = runner.invoke(
        app,
        [
            "shadow",
            "report",
            "--json",
            "--min-days",
            "0",
            "--min-queries",
            "1",
            "--data-dir",
            data_dir,
        ],
    )
    report = json.loads(out.output)
    assert report["verdict"] == "not ready" and report["outcomes"]["mismatch"] == 1
    assert report["records"][0]["first_diff"]["path"] == "series[$pageview].data[2026-11-03]"
    out = runner.invoke(app, ["shadow", "report", "--since", "bogus", "--data-dir", data_dir])
    assert out.exit_code == 2 and "--since" in out.output

    # The query log the service kept replays through the CLI too, and --record stores the result.
    log = str(shadowed.settings.data_dir / "query-log.jsonl")
    out = runner.invoke(
        app,
        [
            *("shadow", "replay", "--log", log, "--candidate", "test-wrong-dau", "--record"),
            *("--json", "--data-dir", data_dir),
        ],
    )
    assert out.exit_code == 1, out.output
    replayed = json.loads(out.output)
    assert replayed["outcomes"] == {"mismatch": 1}
    assert replayed["problems"][0]["data_version"] == record.data_version
    assert len(_store(service).discrepancies()) == 2  # the live one and the replayed one
