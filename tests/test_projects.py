from __future__ import annotations

from pathlib import Path

import pytest

from eventlens.auth.keys import hash_api_key
from eventlens.errors import InvalidInput, NotFound
from eventlens.projects.store import SqliteMetadataStore
from tests.support.server import run_cli


def test_create_project_stores_only_the_key_hash(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "meta.db")
    created = store.create_project("shop", "Europe/Berlin")
    assert created.project.token.startswith("phc_")
    raw = (tmp_path / "meta.db").read_bytes() + (tmp_path / "meta.db-wal").read_bytes()
    assert created.api_key.encode() not in raw
    assert hash_api_key(created.api_key).encode() in raw
    assert store.projects_for_api_key(created.api_key) == [created.project]
    assert store.projects_for_api_key(created.api_key + "x") == []
    assert store.project_by_token(created.project.token) == created.project


def test_keys_are_per_project(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "meta.db")
    a, b = store.create_project("a"), store.create_project("b")
    assert [p.id for p in store.projects_for_api_key(a.api_key)] == [a.project.id]
    store.grant(a.api_key, b.project.id)
    assert [p.id for p in store.projects_for_api_key(a.api_key)] == [a.project.id, b.project.id]
    assert [p.id for p in store.projects_for_api_key(b.api_key)] == [b.project.id]


def test_bad_project_input(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "meta.db")
    with pytest.raises(InvalidInput, match="timezone"):
        store.create_project("x", "Mars/Olympus")
    with pytest.raises(InvalidInput, match="name"):
        store.create_project("  ")
    with pytest.raises(NotFound):
        store.get_project(99)


def test_cli_project_create_json(tmp_path: Path) -> None:
    import json

    out = json.loads(run_cli("project", "create", "web", "--json", data_dir=tmp_path).stdout)
    assert set(out) >= {"id", "token", "api_key"}
    bad = run_cli(
        "project", "create", "web", "--timezone", "Nowhere/X", data_dir=tmp_path, check=False
    )
    assert bad.returncode == 2 and "unknown timezone" in bad.stderr


# -- PostHog's test-account filters (filterTestAccounts: true) ---------------------------------

INTERNAL = [
    {"key": "email", "value": "@example.com", "operator": "not_icontains", "type": "person"}
]


def test_test_account_filters_are_stored_and_default_to_none(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "meta.db")
    created = store.create_project("shop")
    assert created.project.test_account_filters == []
    updated = store.set_test_account_filters(created.project.id, INTERNAL)
    assert updated.test_account_filters == INTERNAL
    assert store.projects_for_api_key(created.api_key)[0].test_account_filters == INTERNAL
    with pytest.raises(NotFound):
        store.set_test_account_filters(99, [])


def test_a_store_from_before_test_account_filters_gets_the_column(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "meta.db")
    db.executescript(
        "CREATE TABLE projects (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
        " token TEXT NOT NULL UNIQUE, timezone TEXT NOT NULL DEFAULT 'UTC',"
        " week_start INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);"
        "INSERT INTO projects (name, token, created_at) VALUES ('old', 'phc_x', 1.0);"
    )
    db.commit()
    db.close()
    store = SqliteMetadataStore(tmp_path / "meta.db")
    assert store.get_project(1).test_account_filters == []
    assert store.get_project(1).path_cleaning_filters == []


def test_cli_sets_and_validates_test_account_filters(tmp_path: Path) -> None:
    import json

    out = json.loads(
        run_cli(
            "project",
            "create",
            "web",
            "--json",
            "--test-account-filters",
            json.dumps(INTERNAL),
            data_dir=tmp_path,
        ).stdout
    )
    listed = json.loads(run_cli("project", "list", "--json", data_dir=tmp_path).stdout)
    assert listed[0]["test_account_filters"] == INTERNAL
    cleared = run_cli(
        "project", "set-test-account-filters", str(out["id"]), "[]", data_dir=tmp_path
    )
    assert json.loads(cleared.stdout)["test_account_filters"] == []
    bad = run_cli(
        "project",
        "set-test-account-filters",
        str(out["id"]),
        '[{"key": "email", "operator": "nope"}]',
        data_dir=tmp_path,
        check=False,
    )
    assert bad.returncode == 2 and "test_account_filters[0].operator" in bad.stderr


# -- PostHog's path cleaning rules (paths queries with pathReplacements: true) -----------------

USER_IDS = [{"alias": "/user/:id", "regex": "/user/\\d+"}]


def test_path_cleaning_filters_are_stored_and_default_to_none(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "meta.db")
    created = store.create_project("shop")
    assert created.project.path_cleaning_filters == []
    updated = store.set_path_cleaning_filters(created.project.id, USER_IDS)
    assert updated.path_cleaning_filters == USER_IDS
    assert store.projects_for_api_key(created.api_key)[0].path_cleaning_filters == USER_IDS
    with pytest.raises(NotFound):
        store.set_path_cleaning_filters(99, [])


def test_cli_sets_and_validates_path_cleaning(tmp_path: Path) -> None:
    import json

    out = json.loads(run_cli("project", "create", "web", "--json", data_dir=tmp_path).stdout)
    done = run_cli(
        "project", "set-path-cleaning", str(out["id"]), json.dumps(USER_IDS), data_dir=tmp_path
    )
    assert json.loads(done.stdout)["path_cleaning_filters"] == USER_IDS
    listed = json.loads(run_cli("project", "list", "--json", data_dir=tmp_path).stdout)
    assert listed[0]["path_cleaning_filters"] == USER_IDS
    bad = run_cli(
        "project",
        "set-path-cleaning",
        str(out["id"]),
        '[{"alias": "x", "regex": "("}]',
        data_dir=tmp_path,
        check=False,
    )
    assert bad.returncode == 2 and "path_cleaning_filters[0].regex" in bad.stderr
