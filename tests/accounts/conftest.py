"""A real server with two organisations, a user of every role, their keys and a legacy key.

Organisation 1 (the default one) owns projects A and C; organisation 2 owns project B. Every
role of organisation 1 has a user (password PASSWORD) and a personal key with every scope; B's
owner is in organisation 2 only. The world is made with the real stores before the server
starts (the same SQLite file the server then opens).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventlens.accounts.policy import Permission, Role
from eventlens.accounts.store import AccountStore
from eventlens.config import Settings
from eventlens.dashboards.store import DashboardStore
from eventlens.projects.store import SqliteMetadataStore
from tests.support.server import ServerProcess

PASSWORD = "correct horse battery staple"
ROLES = (Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER)
TRENDS: dict[str, Any] = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "dateRange": {"date_from": "-7d"},
}


def email_of(role: Role, org: int = 1) -> str:
    return f"{role.value}{org}@example.com"


@dataclass
class World:
    server: ServerProcess
    data_dir: Path
    a: int  # project of org 1
    b: int  # project of org 2
    c: int  # another project of org 1
    legacy_a: str  # A's project secret key
    keys: dict[Role, str] = field(default_factory=dict)  # all-scope personal keys, org 1
    insight_a: int = 0
    dashboard_a: int = 0

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=60, **kw)

    def login(self, email: str, password: str = PASSWORD) -> httpx.Client:
        """A client holding a fresh session (cookies kept by httpx)."""
        c = self.client()
        r = c.post("/api/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return c


def csrf(client: httpx.Client) -> dict[str, str]:
    token = client.cookies.get("eventlens_csrf")
    return {} if token is None else {"X-CSRF-Token": token}


def build_world(data_dir: Path) -> dict[str, Any]:
    settings = Settings().with_data_dir(data_dir)
    projects = SqliteMetadataStore(settings.meta_db)
    accounts = AccountStore(settings.meta_db)
    dashboards = DashboardStore(settings.meta_db)
    try:
        a = projects.create_project("alpha")
        b = projects.create_project("bravo")
        c = projects.create_project("charlie")
        accounts.ensure_default_org()
        org2 = accounts.create_org("Other")
        accounts.assign_project(b.project.id, org2)
        keys: dict[Role, str] = {}
        for role in ROLES:
            user = accounts.create_user(email_of(role), PASSWORD)
            accounts.set_membership(user.id, 1, role)
            keys[role], _ = accounts.create_key(user.id, "all", frozenset(Permission))
        other = accounts.create_user(email_of(Role.OWNER, 2), PASSWORD)
        accounts.set_membership(other.id, org2, Role.OWNER)
        insight = dashboards.create_insight(a.project.id, "saved", TRENDS)
        dash = dashboards.create_dashboard(a.project.id, "board", [insight.id])
    finally:
        dashboards.close()
        accounts.close()
        projects.close()
    return {
        "a": a.project.id,
        "b": b.project.id,
        "c": c.project.id,
        "legacy_a": a.api_key,
        "keys": keys,
        "insight_a": insight.id,
        "dashboard_a": dash.id,
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("accounts") / "data"
    data_dir.mkdir()
    made = build_world(data_dir)
    server = ServerProcess(data_dir).start()
    try:
        yield World(server=server, data_dir=data_dir, **made)
    finally:
        server.stop()
