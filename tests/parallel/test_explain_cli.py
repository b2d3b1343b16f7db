"""`eventlens explain`: a real CLI process over a real project and event table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eventlens.config import Settings
from eventlens.query.testing import event_rows
from eventlens.storage.event_table import EventTable
from tests.parallel.strategies import person_uuid
from tests.support.server import run_cli


def _events(project_dir_table: Path) -> None:
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    events = [
        {
            "event": "$pageview",
            "distinct_id": f"d{p}",
            "person_id": person_uuid(p),
            "timestamp": (today - timedelta(days=back)).isoformat(),
        }
        for p in range(6)
        for back in (1, 2, 60)  # the 60-day-old events are pruned by a -7d query
    ]
    table = EventTable.open_or_create(project_dir_table, buckets=4)
    table.append(event_rows(events), log_offset=None)


def test_explain_prints_the_plan_and_timings(data_dir: Path, project: dict[str, str]) -> None:
    project_id = int(project["id"])
    _events(Settings().with_data_dir(data_dir).event_table_dir(project_id))
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
