"""A data directory with one project, real event tables, and QueryServices in shadow mode."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from eventlens.config import Settings
from eventlens.projects.store import Project, SqliteMetadataStore
from eventlens.query.engines import Engine
from eventlens.query.registry import register_engine
from eventlens.query.service import QueryService
from eventlens.shadow.wiring import build_query_service, shadow_of
from eventlens.storage.event_table import EventTable
from eventlens.storage.schema import EVENT_SCHEMA


def person(distinct_id: str) -> str:
    """A person id the event table can bucket (hex prefix), stable per name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, distinct_id))


def rows(events: list[dict[str, Any]]) -> pa.Table:
    """Events {event, distinct_id, timestamp: datetime, person?, properties?} as table rows."""
    return pa.table(
        {
            "uuid": [str(uuid.uuid4()) for _ in events],
            "event": [e["event"] for e in events],
            "distinct_id": [e["distinct_id"] for e in events],
            "person_id": [person(e.get("person") or e["distinct_id"]) for e in events],
            "timestamp": [e["timestamp"] for e in events],
            "properties": [json.dumps(e.get("properties", {})) for e in events],
            "person_properties": ["{}" for _ in events],
        },
        schema=EVENT_SCHEMA,
    )


@dataclass
class Shadowed:
    settings: Settings
    metadata: SqliteMetadataStore
    project: Project
    services: list[QueryService] = field(default_factory=list)

    def append(self, events: list[dict[str, Any]]) -> int:
        table = EventTable.open_or_create(self.settings.event_table_dir(self.project.id))
        return table.append(rows(events), log_offset=None)

    def service(
        self, candidate: Engine | str, primary: Engine | str = "reference", **overrides: Any
    ) -> QueryService:
        """A QueryService shadowing `primary` with `candidate` (engines are registered)."""
        names = []
        for engine in (primary, candidate):
            if not isinstance(engine, str):
                register_engine(engine)
                engine = engine.name
            names.append(engine)
        settings = replace(
            self.settings,
            shadow_primary=names[0],
            shadow_candidate=names[1],
            **{"shadow_sample": 1.0, **overrides},
        )
        service = build_query_service(settings, self.metadata)
        self.services.append(service)
        return service


@pytest.fixture
def shadowed(tmp_path: Path) -> Iterator[Shadowed]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # Shadow mode observes computations; with the result cache on, a repeated query is a hit
    # and computes nothing to compare (ADR 0008). These tests count candidate runs per query.
    settings = replace(Settings().with_data_dir(data_dir), cache_backend="off")
    metadata = SqliteMetadataStore(settings.meta_db)
    project = metadata.create_project("shadow", "UTC", 0).project
    env = Shadowed(settings, metadata, project)
    yield env
    for s in env.services:
        if shadow_of(s) is not None:
            shadow_of(s).close()
            shadow_of(s).store.close()
    metadata.close()


def day(text: str) -> datetime:
    return (
        datetime.fromisoformat(text + "+00:00")
        if "T" in text
        else datetime.fromisoformat(text + "T12:00:00+00:00")
    )
