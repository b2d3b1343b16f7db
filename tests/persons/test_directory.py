"""persons.directory over a real state db: lookups, merged ids, search, filters, paging."""

from __future__ import annotations

from pathlib import Path

import orjson

from eventlens.persons.directory import (
    get_person,
    list_persons,
    persons_by_id,
    read_only,
    search_matches,
)
from eventlens.storage import state


def _db(path: Path) -> Path:
    conn = state.connect(path)
    persons = {
        "p1": ({"email": "ann@example.com", "plan": "pro"}, ["ann", "anon-1"]),
        "p2": ({"email": "Bob@Example.org", "age": 41}, ["bob"]),
        "p3": ({"name": "Zoë"}, ["zoe"]),
    }
    for pid, (props, dids) in persons.items():
        conn.execute(
            "INSERT INTO persons VALUES (?, ?, 1, ?)", (pid, orjson.dumps(props).decode(), 1_000)
        )
        for did in dids:
            conn.execute("INSERT INTO distinct_ids VALUES (?, ?)", (did, pid))
    # p0 was merged into p1; events may still carry p0.
    conn.execute("INSERT INTO person_overrides VALUES ('p0', 'p1', 5, NULL)")
    conn.close()
    return path


def test_lookups_and_merged_ids(tmp_path: Path) -> None:
    with read_only(_db(tmp_path / "state.db")) as conn:
        got = persons_by_id(conn, ["p0", "p2", "nobody"])
        assert got["p0"].properties["email"] == "ann@example.com"  # shown as its survivor
        assert got["p0"].person_id == "p0" and got["p0"].distinct_ids == ("ann", "anon-1")
        assert got["p2"].to_json()["created_at"] == "1970-01-01T00:00:00.001000+00:00"
        assert got["nobody"].created_at is None and got["nobody"].distinct_ids == ()
        assert get_person(conn, "p0") is not None and get_person(conn, "nobody") is None
    with read_only(tmp_path / "missing.db") as conn:
        assert conn is None and get_person(conn, "p1") is None
    assert not (tmp_path / "missing.db").exists()  # reading never creates


def test_search_filters_and_paging(tmp_path: Path) -> None:
    with read_only(_db(tmp_path / "state.db")) as conn:

        def ids(**kw: object) -> tuple[list[str], int]:
            page, total = list_persons(conn, **kw)  # type: ignore[arg-type]
            return [r.person_id for r in page], total

        assert ids(ids=None, search=None, keep=None, limit=2, offset=0) == (["p1", "p2"], 3)
        assert ids(ids=None, search=None, keep=None, limit=2, offset=2) == (["p3"], 3)
        assert ids(ids=None, search="bob", keep=None, limit=10, offset=0) == (["p2"], 1)
        # A substring of a value, any case; not of a key ("email" is in two persons' keys).
        assert ids(ids=None, search="EXAMPLE", keep=None, limit=10, offset=0)[1] == 2
        assert ids(ids=None, search="email", keep=None, limit=10, offset=0)[1] == 0
        assert ids(ids=None, search="zoë", keep=None, limit=10, offset=0) == (["p3"], 1)
        assert ids(ids=None, search="41", keep=None, limit=10, offset=0) == (["p2"], 1)
        pro = ids(
            ids=None,
            search=None,
            keep=lambda r: r.properties.get("plan") == "pro",
            limit=9,
            offset=0,
        )
        assert pro == (["p1"], 1)
        # Within an insight's persons only.
        assert ids(ids=["p2", "p3"], search="example", keep=None, limit=9, offset=0) == (["p2"], 1)
        assert ids(ids=["p1", "p3"], search=None, keep=None, limit=1, offset=1) == (["p3"], 2)
    record = persons_by_id(None, ["x"])["x"]
    assert not search_matches(record, "x-") and search_matches(record, "x")
