"""A real server holding two projects (A and B, each with its own key) and some events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from eventlens.config import Settings
from eventlens.storage.event_table import EventTable
from eventlens.storage.schema import EVENT_SCHEMA
from tests.support.server import ServerProcess, create_project


def append_events(data_dir: Path, project_id: int, events: list[dict[str, Any]]) -> int:
    """Write `events` ({event, distinct_id, timestamp: datetime, person_id?, properties?}) into
    the project's real event table in one commit; returns the new data version."""
    rows = {
        "uuid": [str(uuid.uuid4()) for _ in events],
        "event": [e["event"] for e in events],
        "distinct_id": [e["distinct_id"] for e in events],
        "person_id": [
            e.get("person_id") or str(uuid.uuid5(uuid.NAMESPACE_URL, e["distinct_id"]))
            for e in events
        ],
        "timestamp": [e["timestamp"] for e in events],
        "properties": [json.dumps(e.get("properties", {})) for e in events],
        "person_properties": [json.dumps(e.get("person_properties", {})) for e in events],
    }
    table = EventTable.open_or_create(
        Settings().with_data_dir(data_dir).event_table_dir(project_id)
    )
    return table.append(pa.table(rows, schema=EVENT_SCHEMA), log_offset=None)


@dataclass
class Deployment:
    server: ServerProcess
    data_dir: Path
    a: dict[str, Any]  # project A: {"id", "token", "api_key", ...}
    b: dict[str, Any]
    now: datetime

    def client(self, api_key: str | None) -> httpx.Client:
        headers = {} if api_key is None else {"Authorization": f"Bearer {api_key}"}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    data_dir = tmp_path_factory.mktemp("api") / "data"
    a = create_project(data_dir, "alpha")
    b = create_project(data_dir, "bravo")
    now = datetime.now(UTC).replace(microsecond=0)
    # A: 3 persons view, 2 sign up. B: a secret event name that must never show through A's key.
    append_events(
        data_dir,
        int(a["id"]),
        [
            {"event": "$pageview", "distinct_id": f"u{i}", "timestamp": now - timedelta(days=1)}
            for i in range(3)
        ]
        + [
            {"event": "signup", "distinct_id": f"u{i}", "timestamp": now - timedelta(hours=20)}
            for i in range(2)
        ],
    )
    append_events(
        data_dir,
        int(b["id"]),
        [
            {"event": "bravo_secret", "distinct_id": "x", "timestamp": now - timedelta(days=1)}
            for _ in range(7)
        ],
    )
    server = ServerProcess(data_dir).start()
    try:
        yield Deployment(server, data_dir, a, b, now)
    finally:
        server.stop()
