"""`eventlens explain`: a real CLI process over a real project and event table."""

from __future__ import annotations

import json
from pathlib import Path

from eventlens.config import Settings
from tests.parallel.support import seed_pageviews
from tests.support.server import run_cli


def test_explain_prints_the_plan_and_timings(data_dir: Path, project: dict[str, str]) -> None:
    project_id = int(project["id"])
    # The 60-day-old events are pruned by a -7d query.
    seed_pageviews(Settings().with_data_dir(data_dir).event_table_dir(project_id), 6, (1, 2, 60))
    query = data_dir / "q.json"
    query.write_text(
        json.dumps(
            {
                "kind": "TrendsQuery",
                "series": [{"event": "$pageview", "math": "dau"}],
                "dateRange": {"date_from": "-7d"},
            }
        )
    )
    out = run_cli("explain", "--project", str(project_id), str(query), "--json", data_dir=data_dir)
    report = json.loads(out.stdout)
    assert report["kind"] == "TrendsQuery" and report["executor"] == "local"
    assert 0 < report["files_kept"] < report["files_total"]
    assert report["files_pruned"] == report["files_total"] - report["files_kept"]
    assert report["rows_scanned"] == 12  # 6 persons x 2 recent days
    assert sum(report["results"][0]["data"]) == 12
    assert report["subtask_runs"] and all("compute_ms" in r for r in report["subtask_runs"])

    text = run_cli("explain", "--project", str(project_id), str(query), data_dir=data_dir).stdout
    assert "pruned" in text and "merge" in text and "sub-tasks" in text


def test_explain_unknown_project_is_a_clear_error(data_dir: Path) -> None:
    query = data_dir / "q.json"
    query.write_text(json.dumps({"kind": "TrendsQuery", "series": [{"event": "x"}]}))
    out = run_cli("explain", "--project", "999", str(query), data_dir=data_dir, check=False)
    assert out.returncode != 0
    assert "999" in out.stderr
