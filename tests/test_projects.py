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
