"""The authorization matrix: every API route x every role x own/other organisation x
cookie / personal key / legacy key / no credentials, against a real server.

The route list is the app's own router (`create_app(...).routes`), so a new route is in the
matrix the day it is added: it must declare a requirement (eventlens/web/auth.py) or be one of
the public routes, and if it takes a body it needs a sample body here, else these tests fail.

The expected answers are this file's SPEC, written from the issue, not read from the policy
module: viewers read, members also save insights, admins and owners also manage (project:admin);
a legacy project key does what it could before accounts (read, query, save) on its own project;
a personal key can do what its user's role allows (its scopes here are all four). Another
organisation's objects are 404 (the policy's "not found" message, so it cannot be confused with
a route's own 404), a missing permission 403, no credentials 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from eventlens.accounts.policy import Role
from eventlens.config import Settings
from eventlens.web.app import create_app
from eventlens.web.auth import PUBLIC_PATHS, Requirement, requirement_of
from tests.accounts.conftest import PASSWORD, ROLES, TRENDS, World, csrf, email_of

READ = {"query:read", "insight:read"}
SPEC: dict[Role, set[str]] = {
    Role.VIEWER: READ,
    Role.MEMBER: READ | {"insight:write"},
    Role.ADMIN: READ | {"insight:write", "project:admin"},
    Role.OWNER: READ | {"insight:write", "project:admin"},
}
LEGACY = READ | {"insight:write"}
MISSING = 999_999  # an id no object has: destructive routes are called on it

# A valid body for every route that takes one (method, path template).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/projects/{project_id}/query"): {"query": TRENDS},
    ("POST", "/api/projects/{project_id}/insights"): {"name": "m", "query": TRENDS},
    ("PATCH", "/api/projects/{project_id}/insights/{insight_id}"): {"name": "renamed"},
    ("POST", "/api/projects/{project_id}/dashboards"): {"name": "d"},
    ("PATCH", "/api/projects/{project_id}/dashboards/{dashboard_id}"): {"name": "d2"},
    ("POST", "/api/projects/{project_id}/cohorts"): {"name": "c", "is_static": True},
    ("PATCH", "/api/projects/{project_id}/cohorts/{cohort_id}"): {"name": "c2"},
    ("POST", "/api/me/keys"): {"label": "m", "scopes": ["query:read"]},
    ("POST", "/api/me/password"): {"current_password": PASSWORD, "new_password": PASSWORD},
    ("PATCH", "/api/orgs/{org_id}/members/{user_id}"): {"role": "viewer"},
    ("POST", "/api/orgs/{org_id}/invites"): {"email": "new@example.com", "role": "viewer"},
}


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    requirement: Requirement
    has_body: bool

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def _requirement(route: APIRoute) -> Requirement | None:
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        found = requirement_of(dep.call)
        if found is not None:
            return found
        stack.extend(dep.dependencies)
    return None


def api_operations() -> list[Op]:
    """Every /api operation of the app, with the requirement it declares."""
    app = create_app(Settings())
    ops = []
    # iter_route_contexts: FastAPI's public walk over included routers (paths with prefixes).
    for ctx in iter_route_contexts(app.routes):
        route, path = ctx.original_route, ctx.path
        if not isinstance(route, APIRoute) or not path or not path.startswith("/api/"):
            continue
        req = _requirement(route)
        for method in sorted(ctx.methods or ()):
            if path in PUBLIC_PATHS:
                assert req is None, f"{path} is public but declares {req}"
                continue
            assert req is not None, f"{method} {path} declares no permission"
            ops.append(Op(method, path, req, route.body_field is not None))
    return ops


OPS = api_operations()


def test_every_api_route_is_in_the_matrix() -> None:
    assert len(OPS) >= 25, [op.label for op in OPS]
    for op in OPS:
        if op.has_body:
            assert (op.method, op.path) in BODIES, f"add a sample body for {op.label}"
    # The matrix sees the routes the issue names.
    labels = {op.label for op in OPS}
    assert "POST /api/projects/{project_id}/insights" in labels
    assert "GET /api/orgs/{org_id}/audit" in labels


class Caller:
    """One credential: a session (a client with cookies), a personal key, a legacy key, none.
    Re-logs in or takes the new legacy key after a call that ends it (logout, rotation)."""

    def __init__(self, world: World, kind: str, role: Role | None) -> None:
        self.world, self.kind, self.role = world, kind, role
        self.client = world.login(email_of(role)) if kind == "cookie" and role else world.client()

    def headers(self) -> dict[str, str]:
        if self.kind == "cookie":
            return csrf(self.client)
        if self.kind == "personal":
            assert self.role is not None
            return {"Authorization": f"Bearer {self.world.keys[self.role]}"}
        if self.kind == "legacy":
            return {"Authorization": f"Bearer {self.world.legacy_a}"}
        return {}

    def call(self, op: Op, path: str) -> httpx.Response:
        body = BODIES.get((op.method, op.path))
        r = self.client.request(op.method, path, json=body, headers=self.headers())
        if r.status_code < 300 and op.path == "/api/logout":
            self.client = self.world.login(email_of(self.role or Role.VIEWER))
        if r.status_code < 300 and op.path.endswith("/secret_key/rotate"):
            self.world.legacy_a = r.json()["api_key"]
        return r


def _fill(op: Op, world: World, own: bool) -> str:
    destructive = op.method == "DELETE"
    return op.path.format(
        project_id=world.a if own else world.b,
        org_id=1 if own else 2,
        insight_id=MISSING if destructive else world.insight_a,
        dashboard_id=MISSING if destructive else world.dashboard_a,
        key_id=MISSING,
        user_id=MISSING,
        query_id="0" * 32,  # no such refresh: an allowed caller gets the route's own 404
        cohort_id=MISSING,  # an allowed caller gets the route's own 404 ("cohort ... not found")
        person_id="no-such-person",  # likewise: the persons routes' own 404
    )


def expected(op: Op, kind: str, role: Role | None, own: bool) -> int | str:
    """401, 403, 404 or "allowed", from SPEC."""
    req = op.requirement
    if kind == "none":
        return 401
    if req.target == "any":
        return "allowed"
    if req.target in ("user", "session"):
        if kind == "legacy" or (kind == "personal" and req.target == "session"):
            return 403
        return "allowed"
    if kind == "legacy":
        if req.target == "org" or not own:
            return 404
        return "allowed" if req.permission in LEGACY else 403
    if not own:
        return 404
    assert role is not None
    return "allowed" if req.permission in SPEC[role] else 403


CREDENTIALS = [("none", None), ("legacy", None)] + [
    (kind, role) for kind in ("cookie", "personal") for role in ROLES
]


@pytest.fixture(scope="module")
def callers(world: World) -> Iterator[dict[tuple[str, Role | None], Caller]]:
    made = {(k, r): Caller(world, k, r) for k, r in CREDENTIALS}
    yield made
    for c in made.values():
        c.client.close()


@pytest.mark.parametrize(("kind", "role"), CREDENTIALS, ids=lambda v: str(v))
def test_matrix(
    world: World, callers: dict[tuple[str, Role | None], Caller], kind: str, role: Role | None
) -> None:
    caller = callers[(kind, role)]
    wrong: list[str] = []
    for op in OPS:
        for own in (True, False):
            if not own and op.requirement.target in ("any", "user", "session"):
                continue  # no organisation in the path
            path = _fill(op, world, own)
            want = expected(op, kind, role, own)
            r = caller.call(op, path)
            detail = (
                r.json().get("detail", "")
                if r.headers.get("content-type", "").startswith("application/json")
                and isinstance(r.json(), dict)
                else ""
            )
            policy_404 = r.status_code == 404 and detail in (
                f"project {world.b} not found",
                "organisation 2 not found",
                f"project {world.a} not found",
                "organisation 1 not found",
            )
            if want == "allowed":
                ok = r.status_code < 400 or (r.status_code == 404 and not policy_404)
            elif want == 404:
                ok = policy_404
            else:
                ok = r.status_code == want
            if not ok:
                wrong.append(
                    f"{op.label} own={own}: want {want}, got {r.status_code} {r.text[:200]}"
                )
    assert not wrong, "\n".join(wrong)
