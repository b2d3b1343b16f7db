"""`eventlens cohort create|list|upload` on a real data directory (subprocesses)."""

from __future__ import annotations

import json
from pathlib import Path

from eventlens.config import Settings
from eventlens.ingest.bulk_import import import_file
from tests.support.server import create_project, run_cli

BUYERS = {
    "properties": {
        "type": "AND",
        "values": [
            {
                "type": "behavioral",
                "key": "purchase",
                "value": "performed_event",
                "time_value": 3650,
            }
        ],
    }
}


def test_create_list_upload(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    project = create_project(data_dir, "cli")
    pid = str(project["id"])
    rows = [
        {"event": "$pageview", "distinct_id": f"u{i}", "timestamp": "2024-01-02T10:00:00Z"}
        for i in range(3)
    ] + [{"event": "purchase", "distinct_id": "u0", "timestamp": "2024-01-03T10:00:00Z"}]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(r) for r in rows))
    import_file(Settings().with_data_dir(data_dir), int(pid), events)

    out = run_cli(
        "cohort", "create", pid, "buyers", "--filters", json.dumps(BUYERS), data_dir=data_dir
    )
    assert json.loads(out.stdout)["is_static"] is False
    out = run_cli(
        "cohort", "create", pid, "picked", "--distinct-ids", "u1,ghost", data_dir=data_dir
    )
    static = json.loads(out.stdout)
    assert (static["added"], static["sample_unknown"]) == (1, ["ghost"])
    csv = tmp_path / "ids.csv"
    csv.write_text("distinct_id\nu2\nnobody\n")
    out = run_cli("cohort", "upload", pid, str(static["id"]), str(csv), data_dir=data_dir)
    assert json.loads(out.stdout) == {"added": 1, "unknown": 1, "sample_unknown": ["nobody"]}
    listed = json.loads(run_cli("cohort", "list", pid, data_dir=data_dir).stdout)["results"]
    assert [(c["name"], c["count"]) for c in listed] == [("buyers", 1), ("picked", 2)]

    bad = run_cli("cohort", "create", pid, "x", "--filters", "{}", data_dir=data_dir, check=False)
    assert bad.returncode != 0 and "filters.properties" in bad.stderr + bad.stdout
