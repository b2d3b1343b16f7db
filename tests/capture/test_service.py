"""CaptureService: token cache (positive, refresh on miss, negative TTL) and the log record."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from eventlens.capture.model import CapturedEvent, DeadLetter, decode_log_record
from eventlens.capture.posthog import ParsedBody
from eventlens.capture.service import CaptureService, TokenCache
from eventlens.errors import AuthenticationError, Unavailable
from eventlens.projects.store import Project, SqliteMetadataStore
from tests.capture.conftest import MemoryLog


class CountingStore:
    def __init__(self, store: SqliteMetadataStore) -> None:
        self.store = store
        self.calls = 0

    def project_by_token(self, token: str) -> Project | None:
        self.calls += 1
        return self.store.project_by_token(token)


@pytest.fixture
def store(tmp_path: Path) -> SqliteMetadataStore:
    return SqliteMetadataStore(tmp_path / "meta.db")


def test_cache_hits_and_refresh_on_miss(store: SqliteMetadataStore) -> None:
    counting = CountingStore(store)
    cache = TokenCache(counting, negative_ttl=60)
    assert cache.lookup("phc_missing") is None
    assert cache.lookup("phc_missing") is None
    assert counting.calls == 1  # negative cache: one query for a flood of the same bad token
    created = store.create_project("new while running")
    token = created.project.token
    assert cache.lookup(token) == created.project  # a miss asks the store
    assert cache.lookup(token) == created.project
    assert counting.calls == 2


def test_negative_cache_expires(store: SqliteMetadataStore) -> None:
    cache = TokenCache(store, negative_ttl=0.0)
    assert cache.lookup("phc_later") is None
    # TTL 0: the next lookup asks again (and the bound on entries keeps memory flat).
    assert cache.lookup("phc_later") is None


def test_negative_cache_is_bounded(store: SqliteMetadataStore) -> None:
    cache = TokenCache(store, negative_ttl=60, max_negative=10)
    for i in range(25):
        cache.lookup(f"bad{i}")
    assert len(cache._unknown) <= 10


def _parsed(token: str | None) -> ParsedBody:
    return ParsedBody(
        token=token,
        events=[CapturedEvent("0190c0de-0000-7000-8000-000000000001", "e", "u", 1, {"a": 1})],
        dead=[DeadLetter(1, "batch[1].event is missing or empty", {"x": 1})],
    )


def test_submit_writes_one_record(store: SqliteMetadataStore) -> None:
    project = store.create_project("p").project
    log = MemoryLog()
    service = CaptureService(store, lambda: log)
    result = asyncio.run(service.submit(_parsed(project.token), received_at_us=123))
    assert result.accepted == 1
    assert result.rejected == [{"index": 1, "reason": "batch[1].event is missing or empty"}]
    pid, received, events, dead = decode_log_record(log.records[0])
    assert (pid, received) == (project.id, 123)
    assert events[0].properties == {"a": 1} and dead[0].payload == {"x": 1}


def test_submit_token_errors(store: SqliteMetadataStore) -> None:
    service = CaptureService(store, lambda: MemoryLog())
    with pytest.raises(AuthenticationError, match="no project token"):
        asyncio.run(service.submit(_parsed(None), received_at_us=1))
    with pytest.raises(AuthenticationError, match="unknown project token"):
        asyncio.run(service.submit(_parsed("phc_nope"), received_at_us=1))


def test_submit_without_log_or_failing_log_is_unavailable(store: SqliteMetadataStore) -> None:
    token = store.create_project("p").project.token
    with pytest.raises(Unavailable):
        asyncio.run(CaptureService(store, lambda: None).submit(_parsed(token), received_at_us=1))
    failing = MemoryLog(fail=True)
    with pytest.raises(Unavailable):
        asyncio.run(CaptureService(store, lambda: failing).submit(_parsed(token), received_at_us=1))
    assert failing.records == []
