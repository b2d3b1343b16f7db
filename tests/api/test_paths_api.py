"""PathsQuery through a real server: both engines, the project's path cleaning rules
(pathReplacements), the result cache, explain and a 400 naming the field."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests.api.conftest import Deployment, append_events
from tests.support.server import run_cli


def _post(d: Deployment, body: Any) -> Any:
    with d.client(d.a["api_key"]) as c:
        return c.post(f"/api/projects/{d.a['id']}/query", json=body)


def _edges(response: Any) -> list[tuple[str, str, int]]:
    assert response.status_code == 200, response.text
    return [(e["source"], e["target"], e["value"]) for e in response.json()["results"]]


def test_paths_with_project_cleaning_on_both_engines(deployment: Deployment) -> None:
    d = deployment
    at = d.now - timedelta(hours=2)
    append_events(
        d.data_dir,
        int(d.a["id"]),
        [
            {
                "event": "$pageview",
                "distinct_id": f"walker{i}",
                "timestamp": at + timedelta(minutes=minute),
                "properties": {"$current_url": url},
            }
            for i, user in enumerate(("12", "7"))
            for minute, url in ((0, "/home/"), (1, f"/user/{user}"))
        ],
    )
    rules = [{"alias": "/user/:id", "regex": "/user/\\d+"}]
    run_cli("project", "set-path-cleaning", str(d.a["id"]), json.dumps(rules), data_dir=d.data_dir)
    day = d.now.date()
    query = {
        "kind": "PathsQuery",
        "dateRange": {"date_from": str(day - timedelta(days=1)), "date_to": str(day)},
        "pathsFilter": {"includeEventTypes": ["$pageview"], "pathReplacements": True},
    }
    cleaned = [("1_/home", "2_/user/:id", 2)]
    assert _edges(_post(d, {"query": query, "engine": "reference"})) == cleaned
    first = _post(d, {"query": query, "engine": "parallel"})
    assert _edges(first) == cleaned
    again = _post(d, {"query": query, "engine": "parallel"})
    assert _edges(again) == cleaned and again.json()["is_cached"] is True

    # New project rules are a new answer, never the cached one (the rules are in the key).
    run_cli("project", "set-path-cleaning", str(d.a["id"]), "[]", data_dir=d.data_dir)
    raw = [("1_/home", "2_/user/12", 1), ("1_/home", "2_/user/7", 1)]
    assert _edges(_post(d, {"query": query, "engine": "parallel"})) == raw
    local = {**query, "pathsFilter": {**query["pathsFilter"], "localPathCleaningFilters": rules}}
    assert _edges(_post(d, {"query": local})) == cleaned

    with d.client(d.a["api_key"]) as c:
        explained = c.post(
            f"/api/projects/{d.a['id']}/query",
            params={"explain": 1},
            json={"query": query, "refresh": "force_blocking"},
        ).json()
    assert explained["explain"]["kernel"] == "paths"
    assert explained["explain"]["events"] == ["$pageview"]


def test_a_bad_cleaning_rule_is_a_400_naming_it(deployment: Deployment) -> None:
    query = {
        "kind": "PathsQuery",
        "pathsFilter": {"localPathCleaningFilters": [{"alias": "x", "regex": "("}]},
    }
    r = _post(deployment, {"query": query})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "query.pathsFilter.localPathCleaningFilters[0].regex"
