"""Persons end to end: capture (real posthog SDK) -> ingest -> query API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from posthog import Posthog

from eventlens.config import Settings
from eventlens.storage.event_table import EventTable
from tests.support.server import ServerProcess, post_query


def _rows(server: ServerProcess, project: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored (event, distinct_id, person_id) rows, to explain a failure."""
    table_dir = Settings().with_data_dir(server.data_dir).event_table_dir(int(project["id"]))
    snapshot = EventTable.open_or_create(table_dir).snapshot()
    rows: list[dict[str, Any]] = snapshot.read(["event", "distinct_id", "person_id"]).to_pylist()
    return rows


def test_anonymous_pageview_then_identified_signup_is_one_person(
    server: ServerProcess, project: dict[str, Any]
) -> None:
    now = datetime.now(UTC)
    client = Posthog(project["token"], host=server.url, sync_mode=True)
    client.capture("$pageview", distinct_id="anon-42", timestamp=now - timedelta(minutes=3))
    client.capture(
        "$identify",
        distinct_id="user@example.com",
        properties={"$anon_distinct_id": "anon-42"},
        timestamp=now - timedelta(minutes=2),
    )
    client.capture("signup", distinct_id="user@example.com", timestamp=now - timedelta(minutes=1))
    client.flush()

    every_event: dict[str, Any] = {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": e} for e in ("$pageview", "signup")],
        "dateRange": {"date_from": "-1d"},
    }
    # Freshness: storage.md promises visibility within 5 s; wait generously (this is not a
    # speed check) until both events are queryable.
    end = time.monotonic() + 30
    while time.monotonic() < end:
        counts = [s["count"] for s in post_query(server, project, every_event)["results"]]
        if counts == [1, 1]:
            break
        time.sleep(0.1)
    assert counts == [1, 1]

    funnel = post_query(
        server,
        project,
        {
            "kind": "FunnelsQuery",
            "series": [
                {"kind": "EventsNode", "event": "$pageview"},
                {"kind": "EventsNode", "event": "signup"},
            ],
            "dateRange": {"date_from": "-1d"},
        },
    )
    assert funnel["data_version"] >= 1
    assert [step["count"] for step in funnel["results"]] == [1, 1], _rows(server, project)
    assert funnel["results"][1]["conversion_from_first"] == 1.0
    # Unique users over all events: one person, not two distinct ids.
    dau = post_query(
        server,
        project,
        {
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": None, "math": "dau"}],
            "dateRange": {"date_from": "-1d"},
            "interval": "day",
        },
    )
    # Two distinct ids on the same day would be 2 if they were two persons (the events may
    # straddle midnight, hence max rather than a single bucket).
    assert max(dau["results"][0]["data"]) == 1
