"""API-key authentication and project isolation, through a real server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Deployment

TRENDS: dict[str, Any] = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "bravo_secret"}],
    "dateRange": {"date_from": "-7d"},
}


def _path(project_id: Any) -> str:
    return f"/api/projects/{project_id}/query"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key"),
        ({"Authorization": ""}, "missing API key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "unsupported authorization scheme"),
        ({"Authorization": "Bearer"}, "malformed Authorization header"),
        ({"Authorization": "Bearer a b"}, "malformed Authorization header"),
        ({"Authorization": "Bearer phx_not_a_real_key"}, "unknown API key"),
    ],
)
def test_query_without_a_valid_key_is_401(
    deployment: Deployment, headers: dict[str, str], message: str
) -> None:
    with deployment.client(None) as c:
        r = c.post(_path(deployment.a["id"]), json={"query": TRENDS}, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["type"] == "AuthenticationError"
    assert message in r.json()["detail"]
    assert "bravo_secret" not in r.text


def test_project_token_is_not_an_api_key(deployment: Deployment) -> None:
    with deployment.client(deployment.a["token"]) as c:
        assert c.get("/api/projects").status_code == 401


def test_key_in_the_url_is_refused(deployment: Deployment) -> None:
    key = deployment.a["api_key"]
    with deployment.client(None) as c:
        r = c.post(f"{_path(deployment.a['id'])}?api_key={key}", json={"query": TRENDS})
    assert r.status_code == 401
    assert r.json()["field"] == "api_key" and "not accepted in the URL" in r.json()["detail"]
    # Even with a valid header too: the key has leaked into a URL, say so.
    with deployment.client(key) as c:
        r = c.get(f"/api/projects?personal_api_key={key}")
    assert r.status_code == 401


def test_invalid_body_without_key_is_401_not_400(deployment: Deployment) -> None:
    with deployment.client(None) as c:
        r = c.post(
            _path(deployment.a["id"]),
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 401


def test_other_projects_id_is_404_like_a_missing_project(deployment: Deployment) -> None:
    a, b = deployment.a, deployment.b
    with deployment.client(a["api_key"]) as c:
        other = c.post(_path(b["id"]), json={"query": TRENDS})
        missing = c.post(_path(999), json={"query": TRENDS})
        get_other = c.get(f"/api/projects/{b['id']}")
    assert other.status_code == 404 and missing.status_code == 404 and get_other.status_code == 404
    assert other.json() == {"type": "NotFound", "detail": f"project {b['id']} not found"}
    # Same answer as for a project that does not exist: existence is not revealed.
    assert missing.json() == {"type": "NotFound", "detail": "project 999 not found"}
    for r in (other, get_other):
        assert "bravo" not in r.text


def test_own_project_reads_only_own_data(deployment: Deployment) -> None:
    a, b = deployment.a, deployment.b
    with deployment.client(b["api_key"]) as c:
        own = c.post(_path(b["id"]), json={"query": TRENDS})
    with deployment.client(a["api_key"]) as c:
        in_a = c.post(_path(a["id"]), json={"query": TRENDS})
    assert own.status_code == 200 and in_a.status_code == 200
    assert own.json()["results"][0]["count"] == 7
    # Project A has no bravo_secret events: the same query on A counts nothing.
    assert in_a.json()["results"][0]["count"] == 0


def test_list_projects_shows_only_the_keys_projects(deployment: Deployment) -> None:
    a = deployment.a
    with deployment.client(a["api_key"]) as c:
        r = c.get("/api/projects")
        one = c.get(f"/api/projects/{a['id']}")
    assert r.status_code == 200
    assert r.json() == [
        {
            "id": a["id"],
            "name": "alpha",
            "timezone": "UTC",
            "week_start": 0,
            "test_account_filters": [],
            "path_cleaning_filters": [],
        }
    ]
    assert one.json() == r.json()[0]
