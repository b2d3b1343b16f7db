"""DashboardStore on a real SQLite file: what is saved comes back, and only to its project."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlens.dashboards import DashboardStore
from eventlens.errors import InvalidInput, NotFound
from eventlens.projects.store import SqliteMetadataStore

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.text(min_size=1, max_size=200).filter(lambda s: s.strip() != "")


@pytest.fixture
def store(tmp_path: Path) -> DashboardStore:
    # The same file as the project store: both sets of tables live side by side.
    SqliteMetadataStore(tmp_path / "meta.db").close()
    return DashboardStore(tmp_path / "meta.db")


@settings(max_examples=30, deadline=None)
@given(name=names, query=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_saved_insight_round_trips(tmp_path_factory: Any, name: str, query: dict[str, Any]) -> None:
    store = DashboardStore(tmp_path_factory.mktemp("s") / "meta.db")
    saved = store.create_insight(1, name, query)
    again = store.get_insight(1, saved.id)
    assert again.name == name.strip() and again.query == query
    dash = store.create_dashboard(1, name, [saved.id])
    assert store.get_dashboard(1, dash.id).insight_ids == [saved.id]
    store.close()


def test_rows_belong_to_their_project(store: DashboardStore) -> None:
    a = store.create_insight(1, "a", {"kind": "TrendsQuery"})
    b = store.create_insight(2, "b", {"kind": "TrendsQuery"})
    assert [i.id for i in store.list_insights(1)] == [a.id]
    with pytest.raises(NotFound):
        store.get_insight(2, a.id)
    with pytest.raises(NotFound):
        store.delete_insight(2, a.id)
    with pytest.raises(InvalidInput) as err:
        store.create_dashboard(1, "d", [a.id, b.id])
    assert err.value.field == "insight_ids[1]"
    dash = store.create_dashboard(1, "d", [a.id])
    with pytest.raises(NotFound):
        store.update_dashboard(2, dash.id, name="x")
    assert store.list_dashboards(2) == []


def test_reorder_and_delete(store: DashboardStore) -> None:
    ids = [store.create_insight(1, f"i{n}", {"n": n}).id for n in range(3)]
    dash = store.create_dashboard(1, "d", ids)
    moved = store.update_dashboard(1, dash.id, insight_ids=list(reversed(ids)))
    assert moved.insight_ids == list(reversed(ids))
    store.delete_insight(1, ids[1])
    assert store.get_dashboard(1, dash.id).insight_ids == [ids[2], ids[0]]
    store.delete_dashboard(1, dash.id)
    assert [i.id for i in store.list_insights(1)] == [ids[0], ids[2]]  # insights stay
    with pytest.raises(InvalidInput):
        store.create_insight(1, "  ", {})


def test_tile_layouts(store: DashboardStore, tmp_path: Path) -> None:
    ids = [store.create_insight(1, f"i{n}", {"n": n}).id for n in range(2)]
    dash = store.create_dashboard(1, "d", ids)
    assert dash.layouts == {}
    sized = store.update_dashboard(1, dash.id, layouts={str(ids[0]): {"w": 2, "h": 1}})
    assert sized.layouts == {str(ids[0]): {"w": 2, "h": 1}}
    # Reordering keeps the sizes; a tile taken off the dashboard loses its size.
    store.update_dashboard(1, dash.id, insight_ids=list(reversed(ids)))
    assert store.get_dashboard(1, dash.id).layouts == {str(ids[0]): {"w": 2, "h": 1}}
    store.update_dashboard(1, dash.id, insight_ids=[ids[1]])
    assert store.get_dashboard(1, dash.id).layouts == {}
    with pytest.raises(InvalidInput) as bad:
        store.update_dashboard(1, dash.id, layouts={str(ids[0]): {"w": 2}})
    assert bad.value.field == f"layouts.{ids[0]}"
    with pytest.raises(InvalidInput) as bad:
        store.update_dashboard(1, dash.id, layouts={str(ids[1]): {"w": 3}})
    assert bad.value.field == f"layouts.{ids[1]}.w"
    # Saved in the file: a new store reads them back.
    store.update_dashboard(1, dash.id, layouts={str(ids[1]): {"w": 1, "h": 2}})
    again = DashboardStore(tmp_path / "meta.db")
    assert again.get_dashboard(1, dash.id).layouts == {str(ids[1]): {"w": 1, "h": 2}}
    again.close()


def test_layouts_column_is_added_to_an_older_file(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "meta.db")
    db.executescript(
        "CREATE TABLE dashboards (id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT"
        " NULL, name TEXT NOT NULL, insight_ids TEXT NOT NULL, created_at REAL NOT NULL,"
        " updated_at REAL NOT NULL);"
        "INSERT INTO dashboards (project_id, name, insight_ids, created_at, updated_at)"
        " VALUES (1, 'old', '[]', 0, 0);"
    )
    db.close()
    store = DashboardStore(tmp_path / "meta.db")
    assert store.list_dashboards(1)[0].layouts == {}
    assert store.list_dashboards(1)[0].filters == {}
    store.close()


def test_dashboard_filters_are_saved(store: DashboardStore, tmp_path: Path) -> None:
    dash = store.create_dashboard(1, "d")
    assert dash.filters == {}
    filters = {"date_from": "-7d", "properties": [{"key": "plan", "value": "pro"}]}
    assert store.update_dashboard(1, dash.id, filters=filters).filters == filters
    assert store.update_dashboard(1, dash.id, name="d2").filters == filters  # kept
    again = DashboardStore(tmp_path / "meta.db")
    assert again.get_dashboard(1, dash.id).filters == filters
    assert again.update_dashboard(1, dash.id, filters={}).filters == {}
    again.close()
