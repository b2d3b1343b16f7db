"""The dedupe index split between SQLite (small batches) and numpy runs (large batches) behaves
like one set: first occurrence of a new key kept, everything else dropped, rollbacks forgotten."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlens.storage import state, uuid_runs

# Keys sharing their high 64 bits (i * 2**64 + j) exercise the runs' tie handling.
POOL = [str(uuid.UUID(int=i * 2**64 + j)) for i in range(3) for j in range(3)] + ["txt"]
BATCH = st.lists(st.sampled_from(POOL), max_size=10)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(BATCH, st.booleans(), st.booleans()), max_size=6),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=2, max_value=3),
)
def test_runs_and_sqlite_index_act_as_one_set(
    batches: list[tuple[list[str], bool, bool]], run_min: int, fanout: int
) -> None:
    saved = (uuid_runs.RUN_MIN_KEYS, uuid_runs.MERGE_FANOUT)
    uuid_runs.RUN_MIN_KEYS, uuid_runs.MERGE_FANOUT = run_min, fanout
    try:
        with tempfile.TemporaryDirectory() as tmp:
            conn = state.connect(Path(tmp) / "s.db")
            seen: set[str] = set()
            for batch, rollback, fresh_conn in batches:
                if fresh_conn:  # another process's view: runs are read from the registry
                    conn.close()
                    conn = state.connect(Path(tmp) / "s.db")
                conn.execute("BEGIN IMMEDIATE")
                keep = state.dedupe_keys(conn, state.uuid_keys(pa.array(batch, pa.string())))
                now = set(seen)
                expected = []
                for v in batch:
                    expected.append(v not in now)
                    now.add(v)
                assert keep.tolist() == expected
                conn.execute("ROLLBACK" if rollback else "COMMIT")
                uuid_runs.remove_orphans(conn)
                if not rollback:
                    seen = now
            conn.close()
    finally:
        uuid_runs.RUN_MIN_KEYS, uuid_runs.MERGE_FANOUT = saved


def test_large_batches_land_in_runs_and_merge(tmp_path: Path) -> None:
    saved = (uuid_runs.RUN_MIN_KEYS, uuid_runs.MERGE_FANOUT)
    uuid_runs.RUN_MIN_KEYS, uuid_runs.MERGE_FANOUT = 2, 2
    try:
        conn = state.connect(tmp_path / "s.db")
        all_keys = [str(uuid.uuid4()) for _ in range(50)]
        for k in range(5):
            conn.execute("BEGIN IMMEDIATE")
            batch = all_keys[k * 10 : (k + 1) * 10]
            keep = state.dedupe_keys(conn, state.uuid_keys(pa.array(batch, pa.string())))
            assert keep.all()
            conn.execute("COMMIT")
        assert conn.execute("SELECT count(*) FROM event_uuids").fetchone()[0] == 0
        runs = conn.execute("SELECT count(*), sum(rows) FROM uuid_runs").fetchone()
        assert runs[0] <= 3 and runs[1] == 50
        conn.execute("BEGIN IMMEDIATE")
        again = state.dedupe_keys(conn, state.uuid_keys(pa.array(all_keys[::-1], pa.string())))
        assert not again.any()
        conn.execute("COMMIT")
        conn.close()
    finally:
        uuid_runs.RUN_MIN_KEYS, uuid_runs.MERGE_FANOUT = saved
