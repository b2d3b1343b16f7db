"""The generated Prometheus rules: current, valid (`promtool check rules`), and correct
(`promtool test rules`: every alert fires on a burning series and stays silent otherwise)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from eventlens.cli.slo import render_files
from eventlens.observability import rules, slo
from tests.observability import promtool_cases

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus (scripts/test does)"
)


def test_checked_in_files_are_current() -> None:
    for name, text in render_files().items():
        assert (DEPLOY / name).read_text() == text, (
            f"deploy/{name} is stale: eventlens slo render --out deploy"
        )


def test_every_alert_has_a_runbook_url_and_a_severity() -> None:
    rule_file = rules.rules(slo.load())
    alerts = [r for g in rule_file["groups"] for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == set(rules.alert_names(slo.load()))
    for a in alerts:
        assert a["annotations"]["runbook_url"].endswith(f"/{a['alert']}.md")
        assert a["labels"]["severity"] in {"page", "ticket"}


def test_time_scale_divides_windows_but_keeps_names() -> None:
    scaled = rules.rules(slo.load(), time_scale=60)
    first = scaled["groups"][0]["rules"][0]
    assert first["record"] == "slo:sli_error:ratio_rate5m" and "[5s]" in first["expr"]


@needs_promtool
def test_promtool_check_rules_accepts_the_rule_files(tmp_path: Path) -> None:
    scaled = tmp_path / "scaled.yaml"
    scaled.write_text(rules.render(slo.load(), time_scale=60))
    out = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(DEPLOY / "eventlens-rules.yaml"), str(scaled)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_slo_has_synthetic_series() -> None:
    assert {s.name for s in slo.load().slos} == set(promtool_cases.SHAPES)


@needs_promtool
def test_promtool_test_rules_every_alert_fires_and_stays_silent(tmp_path: Path) -> None:
    slos = slo.load()
    (tmp_path / "rules.yaml").write_text(rules.render(slos))
    rule_file = rules.rules(slos)
    tests = promtool_cases.burn_tests(slos, rule_file) + promtool_cases.symptom_tests(rule_file)
    covered = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert covered == set(rules.alert_names(slos))  # a firing case for every alert
    # Rules evaluated every 5 minutes over 1-minute samples: enough for 5m windows, and three
    # days of silence stay a few seconds of promtool.
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "5m", "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    out = subprocess.run(
        [str(PROMTOOL), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
