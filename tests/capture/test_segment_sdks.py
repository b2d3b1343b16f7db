"""Segment identity end to end with three real Segment-wire SDKs against a real server:
segment-analytics-python, rudder-sdk-python and @segment/analytics-node (npm, tests/js).

Each SDK sends an anonymous event and a user-only event, then identify + track carrying both
ids; the anonymous events must end up on the user's one person (funnel and unique users through
the query API), and the identify traits must be person properties a person filter finds
(rudder-sdk-python sends them in `context.traits` only).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from eventlens.config import Settings
from eventlens.storage.event_table import EventTable
from tests.support.server import ServerProcess, post_query

JS_DIR = Path(__file__).resolve().parents[1] / "js"
ANON, USER = "anon-7f3a", "user-42"
TRAITS = {"email": "max@example.com", "plan": "pro"}

# One phase of calls: (method, keyword arguments in the Python SDKs' spelling).
Phase = list[tuple[str, dict[str, Any]]]
BEFORE: Phase = [
    ("track", {"anonymous_id": ANON, "event": "Viewed Pricing"}),
    # The user already has a person with events: identify must merge two persons.
    ("track", {"user_id": USER, "event": "Server Ping"}),
]
AFTER: Phase = [
    ("identify", {"user_id": USER, "anonymous_id": ANON, "traits": TRAITS}),
    ("track", {"user_id": USER, "anonymous_id": ANON, "event": "Order Completed"}),
]


def _rows(server: ServerProcess, project: dict[str, Any]) -> list[dict[str, Any]]:
    table_dir = Settings().with_data_dir(server.data_dir).event_table_dir(int(project["id"]))
    if not (table_dir / "_delta_log").exists():
        return []
    snapshot = EventTable.open_or_create(table_dir).snapshot()
    rows: list[dict[str, Any]] = snapshot.read(
        ["event", "distinct_id", "person_id", "person_properties"]
    ).to_pylist()
    return rows


def _wait_rows(server: ServerProcess, project: dict[str, Any], want: int) -> None:
    end = time.monotonic() + 30
    while len(_rows(server, project)) < want:
        assert time.monotonic() < end, f"only {_rows(server, project)} stored"
        time.sleep(0.1)


def _trend(event: str | None, math: str = "total", **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "EventsNode", "event": event, "math": math}
    return {
        "kind": "TrendsQuery",
        "series": [node],
        "dateRange": {"date_from": "-1d"},
        "interval": "day",
        **extra,
    }


def _assert_one_person(server: ServerProcess, project: dict[str, Any]) -> None:
    funnel: dict[str, Any] = {
        "kind": "FunnelsQuery",
        "series": [
            {"kind": "EventsNode", "event": "Viewed Pricing"},
            {"kind": "EventsNode", "event": "Order Completed"},
        ],
        "dateRange": {"date_from": "-1d"},
    }
    # The merge moves the anonymous person's stored events in the writer's rewrite job (every
    # 10 s); until then queries see the old person. Wait for it, generously.
    end = time.monotonic() + 60
    while True:
        counts = [step["count"] for step in post_query(server, project, funnel)["results"]]
        if counts == [1, 1] or time.monotonic() > end:
            break
        time.sleep(0.25)
    assert counts == [1, 1], _rows(server, project)
    # Four events from two distinct ids (three counting the merged-away one): one user.
    dau = post_query(server, project, _trend(None, "dau"))
    assert max(dau["results"][0]["data"]) == 1, _rows(server, project)
    assert sum(post_query(server, project, _trend(None))["results"][0]["data"]) == 4


def _assert_traits_are_person_properties(server: ServerProcess, project: dict[str, Any]) -> None:
    def orders(key: str, value: str) -> int:
        flt = [{"key": key, "value": value, "operator": "exact", "type": "person"}]
        result = post_query(server, project, _trend("Order Completed", properties=flt))
        return int(sum(result["results"][0]["data"]))

    assert orders("email", TRAITS["email"]) == 1, _rows(server, project)
    assert orders("plan", "pro") == 1
    assert orders("plan", "free") == 0


def _run_python_sdk(client: Any, phases: list[Phase], between: Callable[[], None]) -> None:
    for i, phase in enumerate(phases):
        for method, kwargs in phase:
            getattr(client, method)(**kwargs)
        client.flush()
        if i < len(phases) - 1:
            between()
    client.shutdown()


@pytest.fixture
def errors() -> Iterator[list[Any]]:
    found: list[Any] = []
    yield found
    assert found == [], f"SDK reported errors: {found}"


def test_segment_python_identify_merges_anonymous_person(
    server: ServerProcess, project: dict[str, Any], errors: list[Any]
) -> None:
    client = SegmentClient(
        project["token"], host=server.url, on_error=lambda e, b: errors.append(e)
    )
    _run_python_sdk(client, [BEFORE, AFTER], lambda: _wait_rows(server, project, 2))
    _assert_one_person(server, project)
    _assert_traits_are_person_properties(server, project)


def test_rudder_python_context_traits_and_merge(
    server: ServerProcess, project: dict[str, Any], errors: list[Any]
) -> None:
    client = RudderClient(project["token"], host=server.url, on_error=lambda e, b: errors.append(e))
    _run_python_sdk(client, [BEFORE, AFTER], lambda: _wait_rows(server, project, 2))
    _assert_one_person(server, project)
    _assert_traits_are_person_properties(server, project)


_JS_NAMES = {"user_id": "userId", "anonymous_id": "anonymousId"}


def _js_calls(phase: Phase) -> str:
    calls = [{"type": m, **{_JS_NAMES.get(k, k): v for k, v in kw.items()}} for m, kw in phase]
    return json.dumps(calls)


@pytest.fixture(scope="module")
def node_sdk() -> Path:
    """tests/js with its locked node_modules (`npm ci` when missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed for the @segment/analytics-node test"
    if not (JS_DIR / "node_modules" / "@segment" / "analytics-node").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=300)
    return JS_DIR


def test_segment_node_identify_merges_anonymous_person(
    server: ServerProcess, project: dict[str, Any], node_sdk: Path
) -> None:
    for i, phase in enumerate([BEFORE, AFTER]):
        out = subprocess.run(
            ["node", "segment_send.js", server.url, project["token"], _js_calls(phase)],
            cwd=node_sdk,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        if i == 0:
            _wait_rows(server, project, 2)
    _assert_one_person(server, project)
    _assert_traits_are_person_properties(server, project)
