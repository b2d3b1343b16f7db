"""`eventlens import` end to end (a real CLI subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from tests.storage.support import T0, settings_at, table_rows
from tests.support.server import run_cli


def test_import_cli_loads_a_file_and_reports_counts(
    data_dir: Path, project: dict[str, str], tmp_path: Path
) -> None:
    f = tmp_path / "events.ndjson"
    lines = [
        {
            "event": "view",
            "distinct_id": f"d{i}",
            "timestamp": T0 // 1000 + i,
            "properties": {"i": i},
        }
        for i in range(50)
    ]
    f.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n{}\n")
    out = run_cli(
        "import", str(f), "--project", str(project["id"]), "--json", data_dir=data_dir, check=False
    )
    # The valid rows are stored; the rejected one makes the command fail (InvalidInput).
    assert out.returncode == 2, out.stderr
    assert json.loads(out.stdout)["imported"] == 50
    assert json.loads(out.stdout)["invalid"] == 1
    assert "1 rows rejected (1 event is missing or empty)" in out.stderr
    rows = table_rows(settings_at(data_dir), int(project["id"]))
    assert sorted(r["properties"]["i"] for r in rows) == list(range(50))
    plain = run_cli("import", str(f), "--project", str(project["id"]), data_dir=data_dir)
    assert plain.returncode == 0 and "imported 0 events" in plain.stdout


def test_import_cli_rejects_unknown_project_and_bad_file(
    data_dir: Path, project: dict[str, str], tmp_path: Path
) -> None:
    f = tmp_path / "e.jsonl"
    f.write_text("")
    out = run_cli("import", str(f), "--project", "999", data_dir=data_dir, check=False)
    assert out.returncode == 3 and "no project with id 999" in out.stderr  # NotFound
    bad = tmp_path / "e.txt"
    bad.write_text("x")
    out = run_cli(
        "import", str(bad), "--project", str(project["id"]), data_dir=data_dir, check=False
    )
    assert out.returncode == 2 and "unsupported import file type" in out.stderr
