"""Fixtures for capture tests: an in-process app over a real metadata store and an in-memory
ingest log (the real IngestLog is exercised end to end in test_e2e.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp

from eventlens.capture.model import CapturedEvent, DeadLetter, decode_log_record
from eventlens.config import Settings
from eventlens.errors import Unavailable
from eventlens.runtime import Runtime, build_runtime


@dataclass
class MemoryLog:
    """Stands in for IngestLog: keeps appended records; `fail` makes appends raise 503."""

    records: list[bytes] = field(default_factory=list)
    fail: bool = False

    async def append(self, payload: bytes) -> int:
        if self.fail:
            raise Unavailable("disk on fire")
        self.records.append(payload)
        return sum(len(r) for r in self.records)

    def append_blocking(self, payload: bytes) -> int:
        self.records.append(payload)
        return len(self.records)

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def decoded(self) -> list[tuple[int, int, list[CapturedEvent], list[DeadLetter]]]:
        return [decode_log_record(r) for r in self.records]

    def events(self) -> list[CapturedEvent]:
        return [e for rec in self.decoded() for e in rec[2]]

    def dead(self) -> list[DeadLetter]:
        return [d for rec in self.decoded() for d in rec[3]]


class SyncClient:
    """httpx over ASGITransport driven from sync tests (one event loop per client)."""

    def __init__(self, app: ASGIApp) -> None:
        self._runner = asyncio.Runner()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        return self._runner.run(self._client.request(method, url, **kwargs))  # type: ignore[arg-type]

    def post(self, url: str, **kwargs: object) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


@dataclass
class App:
    client: SyncClient
    log: MemoryLog
    runtime: Runtime
    token: str
    project_id: int


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    settings = Settings().with_data_dir(tmp_path / "data")
    log = MemoryLog()
    runtime = build_runtime(settings, log=log)
    created = runtime.metadata.create_project("capture-test")
    from eventlens.web.app import create_app  # here: a broken import fails only app tests

    application = create_app(settings)
    application.state.runtime = runtime  # no lifespan: the runtime is built above
    client = SyncClient(application)
    try:
        yield App(client, log, runtime, created.project.token, created.project.id)
    finally:
        client.close()
        runtime.close()
