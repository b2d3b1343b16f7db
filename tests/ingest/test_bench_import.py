from __future__ import annotations

from eventlens.bench.importer import run_import_bench


def test_import_bench_measures_both_paths_until_stored() -> None:
    lines: list[str] = []
    report = run_import_bench(2_000, say=lines.append)
    assert report["events"] == 2_000
    assert report["import_s"] > 0 and report["sdk_s"] > 0
    assert report["ratio"] == report["import_eps"] / report["sdk_eps"]
    assert any(line.startswith("import: 2,000 events") for line in lines)
