from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlens.capture.ratelimit import ProjectRateLimiter, TokenBucket
from eventlens.config import Settings
from eventlens.errors import RateLimited
from eventlens.storage.event_table import EventTable
from tests.support.server import ServerProcess, create_project


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_burst_then_limits_and_refills() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)
    bucket.take(20)
    with pytest.raises(RateLimited) as info:
        bucket.take(5)
    assert info.value.retry_after == pytest.approx(0.5)
    clock.now = 0.5
    bucket.take(5)


@given(st.lists(st.tuples(st.floats(0, 5), st.integers(1, 50)), max_size=40))
def test_bucket_never_admits_more_than_rate_times_time_plus_burst(
    steps: list[tuple[float, int]],
) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)
    admitted = 0
    for dt, n in steps:
        clock.now += dt
        try:
            bucket.take(n)
            admitted += n
        except RateLimited as exc:
            assert exc.retry_after > 0
    assert admitted <= 20 + 10 * clock.now + 1e-6


def test_limiter_is_per_project_and_off_by_default() -> None:
    ProjectRateLimiter(0).check(1, 10**9)
    limiter = ProjectRateLimiter(rate=1, burst=5)
    limiter.check(1, 5)
    limiter.check(2, 5)
    with pytest.raises(RateLimited):
        limiter.check(1, 1)


def _batch(token: str, n: int) -> dict[str, object]:
    return {
        "api_key": token,
        "batch": [
            {"event": "e", "distinct_id": "u", "uuid": str(uuid.uuid4()), "properties": {}}
            for _ in range(n)
        ],
    }


def test_server_answers_429_with_retry_after_and_keeps_nothing_of_it(tmp_path: Path) -> None:
    project = create_project(tmp_path)
    server = ServerProcess(tmp_path, env={"EVENTLENS_CAPTURE_RATE_LIMIT": "5"}).start()
    try:
        ok = httpx.post(server.url + "/batch/", json=_batch(project["token"], 10))
        assert ok.status_code == 200
        limited = httpx.post(server.url + "/batch/", json=_batch(project["token"], 10))
        assert limited.status_code == 429
        assert "rate limit" in limited.json()["detail"]
        assert int(limited.headers["Retry-After"]) >= 1
        time.sleep(2.1)
        assert httpx.post(server.url + "/batch/", json=_batch(project["token"], 10)).is_success
    finally:
        server.stop()
    # The server drains its log on shutdown-restart; count what the table holds.
    settings = Settings().with_data_dir(tmp_path)
    table_dir = settings.event_table_dir(int(project["id"]))
    deadline = time.monotonic() + 60  # a wait for the consumer, generous on a loaded machine
    rows = -1
    server = ServerProcess(tmp_path).start()
    try:
        while time.monotonic() < deadline:
            if table_dir.exists():
                rows = sum(f.rows for f in EventTable.open_or_create(table_dir).snapshot().files)
                if rows >= 20:
                    break
            time.sleep(0.1)
    finally:
        server.stop()
    assert rows == 20  # the two accepted batches, nothing of the limited one
