"""The event table on S3-compatible object storage (moto's S3 server on loopback): commits,
snapshots, time travel, reads, concurrent writers, and the storage_url setting."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.config import Settings
from eventlens.errors import InvalidInput
from eventlens.query.testing import event_rows
from eventlens.storage import tables
from eventlens.storage.event_table import EventTable
from eventlens.storage.object_store import check_url, filesystem, join
from tests.parallel import strategies as ps
from tests.parallel.support import compare_engines
from tests.support.s3 import S3, moto_s3


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    with moto_s3() as server:
        yield server


def _events(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "event": "$pageview" if i % 3 else "signup",
            "distinct_id": f"d{i % 17}",
            "person_id": f"00000000-0000-4000-8000-{i % 17:012d}",
            "timestamp": f"2026-11-{1 + i % 9:02d}T{i % 24:02d}:00:00Z",
            "properties": {"i": i},
        }
        for i in range(start, start + n)
    ]


def test_commits_snapshots_and_time_travel_on_s3(s3: S3) -> None:
    root = s3.prefix()
    location = f"{root}/events"
    assert not EventTable.exists(location)
    table = EventTable.open_or_create(location, buckets=4)
    assert table.append(event_rows(_events(60)), log_offset=7) == 1
    assert table.append(event_rows(_events(40, 60)), log_offset=9) == 2
    assert EventTable.exists(location)
    # A second handle (another process) sees the commits, the marker and the bucket count.
    other = EventTable.open_or_create(location, buckets=99)
    assert other.buckets == 4 and other.version() == 2 and other.committed_log_offset() == 9
    latest = other.snapshot()
    assert all(f.path.startswith(location + "/day=") for f in latest.files)
    keys = set(s3.keys(root.removeprefix(f"s3://{s3.bucket}/")))
    assert {f.path.removeprefix(f"s3://{s3.bucket}/") for f in latest.files} <= keys
    data = latest.read(["uuid", "event", "bucket"])
    assert data.num_rows == 100
    first = other.snapshot(1)
    assert first.read(["uuid"]).num_rows == 60  # time travel: version 1 has the first append
    buckets = set(pc.unique(data.column("bucket")).to_pylist())
    assert buckets == {f.bucket for f in latest.files}


def test_a_stale_writer_commits_after_the_other_without_losing_rows(s3: S3) -> None:
    # Two handles opened at the same version, as two ingest processes would be: the second
    # commit finds version 1 taken (conditional put) and commits as version 2 instead of
    # overwriting it.
    location = f"{s3.prefix()}/events"
    a = EventTable.open_or_create(location, buckets=2)
    b = EventTable.open_or_create(location, buckets=2)
    assert a.append(event_rows(_events(10)), log_offset=None) == 1
    assert b.append(event_rows(_events(15, 10)), log_offset=None) == 2
    assert a.snapshot().read(["uuid"]).num_rows == 25


def test_storage_url_places_every_project_table_under_the_prefix(s3: S3, tmp_path: Path) -> None:
    root = s3.prefix("deploy")
    settings = replace(Settings().with_data_dir(tmp_path), storage_url=root)
    assert settings.event_table_location(3) == f"{root}/projects/3/events"
    assert tables.snapshot(settings, 3).files == []  # no table yet: the empty version 0
    assert not tables.has_table(settings, 3)
    EventTable.open_or_create(settings.event_table_location(3), buckets=2).append(
        event_rows(_events(5)), log_offset=None
    )
    assert tables.snapshot(settings, 3).read(["uuid"]).num_rows == 5
    assert not settings.event_table_dir(3).exists()  # nothing local for the table


def test_storage_urls_and_paths_are_checked() -> None:
    assert check_url("") == ""
    assert check_url("s3://b/p/") == "s3://b/p"
    for bad in ("gs://b/p", "s3://", "/local/dir", "b/p"):
        with pytest.raises(InvalidInput, match="s3://BUCKET"):
            check_url(bad)
    with pytest.raises(InvalidInput, match="mixes"):
        filesystem(["/a.parquet", "s3://b/a.parquet"])
    assert join(Path("/x"), "y") == Path("/x/y")
    assert join("s3://b/p/", "y", "z") == "s3://b/p/y/z"


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    database=None,
)
@given(
    ps.event_sets(),
    st.one_of(
        ps.trends_queries(), ps.funnels_queries(), ps.retention_queries(), ps.lifecycle_queries()
    ),
    st.booleans(),
)
def test_the_parallel_engine_over_s3_equals_the_reference(
    s3: S3, events: list[dict[str, Any]], query: dict[str, Any], resident: bool
) -> None:
    # Both read paths over object storage: the Parquet scan (Arrow dataset on S3 handed to
    # DuckDB) and the resident buckets built from it.
    compare_engines(
        events,
        query,
        buckets=4,
        executor="local",
        now=ps.NOW,
        resident=resident,
        location=lambda _tmp: s3.prefix() + "/events",
    )
