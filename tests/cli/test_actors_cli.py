"""`eventlens query` with an ActorsQuery: run in-process on a data directory, printed as a
table of persons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from eventlens.cli.common import console
from eventlens.cli.query import render, run_local
from tests.api.conftest import append_events
from tests.support.server import create_project


def test_actors_query_runs_locally_and_prints_a_person_table(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    project = create_project(data_dir, "cli-actors")
    now = datetime.now(UTC).replace(microsecond=0)
    append_events(
        data_dir,
        int(project["id"]),
        [
            {"event": "$pageview", "distinct_id": d, "timestamp": now - timedelta(hours=3)}
            for d in ("u1", "u2", "u3")
        ]
        + [{"event": "signup", "distinct_id": "u2", "timestamp": now - timedelta(hours=2)}],
    )
    funnel = {
        "kind": "FunnelsQuery",
        "series": [
            {"kind": "EventsNode", "event": "$pageview"},
            {"kind": "EventsNode", "event": "signup"},
        ],
        "dateRange": {"date_from": "-1d"},
    }
    body = {
        "query": {
            "kind": "ActorsQuery",
            "source": {"kind": "InsightActorsQuery", "source": funnel, "funnelStep": -2},
            "limit": 1,
        }
    }
    answer = run_local(int(project["id"]), body, None, data_dir)
    assert answer["total"] == 2 and answer["insight_value"] == 2 and answer["hasMore"]
    assert answer["kind"] == "ActorsQuery" and len(answer["results"]) == 1
    with console.capture() as cap:
        old = console.width
        console.width = 200
        try:
            render(answer, None)
        finally:
            console.width = old
    text = cap.get()
    assert "Persons 1-1 of 2 (the insight shows 2)" in text
    assert answer["results"][0][0]["id"] in text
    assert "more: offset 1" in text
