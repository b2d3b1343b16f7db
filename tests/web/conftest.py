"""A real server with two projects for the dashboard tests, and a browser page that records
console errors.

Project A ("Demo", America/New_York) holds generated events (eventlens.generate, bulk-imported
like `eventlens demo` does); project B ("bravo") holds a secret event name that must never show
through A's key, and the other way round.

Chromium is Debian's (`apt-get install -y chromium`): `playwright install` cannot download here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from playwright.sync_api import ConsoleMessage, Error, Page

from eventlens.config import Settings
from eventlens.generate import write_file
from eventlens.ingest.bulk_import import import_file
from eventlens.projects.store import CreatedProject, SqliteMetadataStore
from eventlens.storage.event_table import EventTable
from eventlens.storage.schema import EVENT_SCHEMA
from tests.support.server import ServerProcess

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SECRET_EVENT = "bravo_secret_launch"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Use the system Chromium (pytest-playwright already runs it headless, without sandbox)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    return {**browser_type_launch_args, "executable_path": CHROMIUM}


def append_events(data_dir: Path, project_id: int, events: list[dict[str, Any]]) -> int:
    """Write events ({event, distinct_id, timestamp, properties?}) in one commit."""
    rows = {
        "uuid": [str(uuid.uuid4()) for _ in events],
        "event": [e["event"] for e in events],
        "distinct_id": [e["distinct_id"] for e in events],
        "person_id": [str(uuid.uuid5(uuid.NAMESPACE_URL, e["distinct_id"])) for e in events],
        "timestamp": [e["timestamp"] for e in events],
        "properties": [json.dumps(e.get("properties", {})) for e in events],
        "person_properties": ["{}" for _ in events],
    }
    table = EventTable.open_or_create(
        Settings().with_data_dir(data_dir).event_table_dir(project_id)
    )
    return table.append(pa.table(rows, schema=EVENT_SCHEMA), log_offset=None)


@dataclass
class Site:
    server: ServerProcess
    data_dir: Path
    a: dict[str, Any]  # {"id", "token", "api_key", ...}
    b: dict[str, Any]
    empty: dict[str, Any]  # a project without events, readable by A's key too

    @property
    def url(self) -> str:
        return self.server.url

    def query(self, project: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        """The query API's answer (what the page must show)."""
        r = httpx.post(
            f"{self.url}/api/projects/{project['id']}/query",
            json={"query": query},
            headers={"Authorization": f"Bearer {project['api_key']}"},
            timeout=60,
        )
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result


def _created(created: CreatedProject) -> dict[str, Any]:
    p = created.project
    return {"id": p.id, "name": p.name, "token": p.token, "api_key": created.api_key}


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web")
    data_dir = root / "data"
    settings = Settings().with_data_dir(data_dir)
    meta = SqliteMetadataStore(settings.meta_db)
    a, b, empty = (
        _created(meta.create_project(name, timezone))
        for name, timezone in (("Demo", "America/New_York"), ("bravo", "UTC"), ("empty", "UTC"))
    )
    # A's key also reads the empty project: the project switcher has two entries.
    meta.grant(a["api_key"], int(empty["id"]))
    meta.close()
    events = root / "events.parquet"
    write_file(events, 4000, seed=7, end=datetime.now(UTC), days=14)
    import_file(settings, int(a["id"]), events)
    now = datetime.now(UTC)
    append_events(
        data_dir,
        int(b["id"]),
        [
            {"event": SECRET_EVENT, "distinct_id": "x", "timestamp": now - timedelta(hours=2)},
        ],
    )
    server = ServerProcess(data_dir).start()
    try:
        yield Site(server, data_dir, a, b, empty)
    finally:
        server.stop()


@dataclass
class UI:
    """A page plus what its console said; every test must end with no unexpected errors."""

    page: Page
    site: Site
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Expect console errors matching `pattern` (e.g. the 400 of a deliberately bad query:
        Chromium logs every failed request)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def open(self, hash_path: str = "#/") -> None:
        self.page.goto(f"{self.site.url}/{hash_path}")

    def login(self, key: str, hash_path: str = "#/") -> None:
        self.open(hash_path)
        self.page.get_by_label("Personal API key").fill(key)
        self.page.get_by_role("button", name="Log in").click()
        self.page.locator("#top").wait_for(state="visible")

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def ui(page: Page, site: Site) -> Iterator[UI]:
    state = UI(page, site)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning"):
            state.errors.append(f"console.{msg.type}: {msg.text} ({msg.location.get('url')})")

    def on_error(err: Error) -> None:
        state.errors.append(f"pageerror: {err.message}")

    page.on("console", on_console)
    page.on("pageerror", on_error)
    page.set_default_timeout(20_000)
    yield state
    assert state.unexpected() == [], "console errors on the page"
