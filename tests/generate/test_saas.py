"""The second generator (another shape): deterministic, the shape it promises, and every row
imports through `eventlens import`'s binary-uuid path."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.compute as pc
import pyarrow.parquet as pq
from typer.testing import CliRunner

from eventlens.cli.main import app
from eventlens.generate.saas import generate_saas
from eventlens.ingest.bulk_import import import_file
from tests.storage.support import settings_at, table_rows


def test_same_seed_same_table_and_a_skewed_shape() -> None:
    a, b = generate_saas(3000, seed=3), generate_saas(3000, seed=3)
    assert a.equals(b) and not a.equals(generate_saas(3000, seed=4))
    counts = sorted(pc.value_counts(a.column("distinct_id")).field("counts").to_pylist())
    # Pareto activity: the busiest tenth of persons hold far more than a tenth of the events.
    top = sum(counts[-max(1, len(counts) // 10) :])
    assert top > 0.3 * a.num_rows
    props = [orjson.loads(p) for p in a.column("properties").to_pylist()]
    nulls = sum(p.get("$browser") in (None, "") for p in props)
    assert 0.05 < nulls / len(props) < 0.2  # the null breakdown row is exercised
    assert a.schema.field("uuid").type.byte_width == 16


def test_cli_writes_it_and_import_gets_every_row(tmp_path: Path) -> None:
    out = tmp_path / "saas.parquet"
    result = CliRunner().invoke(
        app, ["generate", "--events", "2000", "--out", str(out), "--shape", "saas"]
    )
    assert result.exit_code == 0, result.output
    assert pq.read_metadata(out).num_rows == 2000
    s = settings_at(tmp_path / "data")
    imported = import_file(s, 1, out)
    assert (imported.imported, imported.invalid, imported.duplicates) == (2000, 0, 0)
    stored = {r["uuid"] for r in table_rows(s)}
    want = {
        str(__import__("uuid").UUID(bytes=u)) for u in pq.read_table(out).column("uuid").to_pylist()
    }
    assert stored == want
