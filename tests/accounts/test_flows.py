"""The account flows through a real server: login, logout, keys, invites, resets, roles, the
audit log and the legacy key's rotation."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from eventlens.accounts.policy import Role
from tests.accounts.conftest import PASSWORD, TRENDS, World, csrf, email_of
from tests.support.server import run_cli


def create_user_cli(
    data_dir: Path, email: str, password: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`eventlens user create` with the password on stdin (never an argument)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "eventlens",
            "user",
            "create",
            email,
            *args,
            "--data-dir",
            str(data_dir),
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_login_answers_the_account_and_sets_both_cookies(world: World) -> None:
    with world.client() as c:
        r = c.post("/api/login", json={"email": email_of(Role.VIEWER), "password": PASSWORD})
        assert r.status_code == 200, r.text
        me = r.json()
        assert me["email"] == email_of(Role.VIEWER) and me["auth"] == "session"
        assert me["orgs"] == [{"id": 1, "name": "Default", "role": "viewer", "projects": None}]
        assert me["csrf_token"] == c.cookies.get("eventlens_csrf")
        # The session works for reading; the viewer sees org 1's projects only.
        ids = {p["id"] for p in c.get("/api/projects").json()}
        assert ids == {world.a, world.c}


def test_email_is_case_insensitive_and_login_fails_alike(world: World) -> None:
    with world.client() as c:
        ok = c.post(
            "/api/login", json={"email": email_of(Role.MEMBER).upper(), "password": PASSWORD}
        )
        assert ok.status_code == 200
        bad_pw = c.post("/api/login", json={"email": email_of(Role.MEMBER), "password": "x" * 12})
        no_user = c.post("/api/login", json={"email": "nobody@example.com", "password": "x" * 12})
    assert bad_pw.status_code == no_user.status_code == 401
    assert (
        bad_pw.json()
        == no_user.json()
        == {
            "type": "AuthenticationError",
            "detail": "wrong email or password",
        }
    )


def test_logout_ends_the_session_everywhere(world: World) -> None:
    c = world.login(email_of(Role.MEMBER))
    stolen = c.cookies.get("eventlens_session")
    assert c.post("/api/logout", headers=csrf(c)).status_code == 204
    with world.client() as other:
        other.cookies.set("eventlens_session", stolen or "")
        r = other.get("/api/me")
    assert r.status_code == 401 and "session" in r.json()["detail"]
    c.close()


def test_personal_key_scopes_project_restriction_revocation(world: World) -> None:
    c = world.login(email_of(Role.OWNER))
    made = c.post(
        "/api/me/keys",
        json={"label": "ci", "scopes": ["query:read"], "project_id": world.a},
        headers=csrf(c),
    )
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["id"]
    assert key.startswith("phx_") and made.json()["mask"] == key[:8] + "…"
    # Shown once: the list has the mask only.
    listed = c.get("/api/me/keys").json()
    assert key not in str(listed) and any(k["id"] == key_id for k in listed)
    with world.client(headers=_bearer(key)) as k:
        assert k.post(f"/api/projects/{world.a}/query", json={"query": TRENDS}).status_code == 200
        saved = k.post(f"/api/projects/{world.a}/insights", json={"name": "x", "query": TRENDS})
        assert saved.status_code == 403 and "insight:write" in saved.json()["detail"]
        # Restricted to A: C (same organisation) is not visible to it.
        assert k.get(f"/api/projects/{world.c}").status_code == 404
        assert [p["id"] for p in k.get("/api/projects").json()] == [world.a]
        # A key cannot mint keys.
        assert (
            k.post("/api/me/keys", json={"label": "y", "scopes": ["query:read"]}).status_code == 403
        )
    assert c.delete(f"/api/me/keys/{key_id}", headers=csrf(c)).status_code == 204
    with world.client(headers=_bearer(key)) as k:
        assert k.get("/api/projects").status_code == 401
    c.close()


def test_a_key_never_exceeds_its_users_role(world: World) -> None:
    c = world.login(email_of(Role.VIEWER))
    made = c.post(
        "/api/me/keys", json={"label": "all", "scopes": ["insight:write"]}, headers=csrf(c)
    )
    key = made.json()["key"]
    with world.client(headers=_bearer(key)) as k:
        r = k.post(f"/api/projects/{world.a}/insights", json={"name": "x", "query": TRENDS})
    assert r.status_code == 403
    c.close()


def test_phc_token_is_named_as_such(world: World) -> None:
    with world.client() as c:
        token = c.get(f"/api/projects/{world.a}", headers=_bearer(world.legacy_a)).json()
        assert token["id"] == world.a
    tok = _project_token(world, world.a)
    with world.client(headers=_bearer(tok)) as c:
        r = c.get("/api/projects")
    assert r.status_code == 401 and "public capture token" in r.json()["detail"]


def _project_token(world: World, project_id: int) -> str:
    db = sqlite3.connect(world.data_dir / "meta.db")
    try:
        return str(
            db.execute("SELECT token FROM projects WHERE id = ?", (project_id,)).fetchone()[0]
        )
    finally:
        db.close()


def test_invite_is_one_time_and_gives_the_role(world: World) -> None:
    admin = world.login(email_of(Role.ADMIN))
    r = admin.post(
        "/api/orgs/1/invites",
        json={"email": "invitee@example.com", "role": "viewer"},
        headers=csrf(admin),
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert r.json()["link"] == f"/#/invite/{token}"
    # An admin cannot invite an owner; only an owner can.
    owner_invite = admin.post(
        "/api/orgs/1/invites", json={"email": "o@example.com", "role": "owner"}, headers=csrf(admin)
    )
    assert owner_invite.status_code == 403
    with world.client() as c:
        short = c.post("/api/invites/accept", json={"token": token, "password": "short"})
        assert short.status_code == 400 and "at least 12" in short.json()["detail"]
        ok = c.post("/api/invites/accept", json={"token": token, "password": "a long new password"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["orgs"][0]["role"] == "viewer"
        assert c.get("/api/me").json()["email"] == "invitee@example.com"
    with world.client() as c:
        again = c.post(
            "/api/invites/accept", json={"token": token, "password": "another password!"}
        )
    assert again.status_code == 404
    members = admin.get("/api/orgs/1/members").json()
    assert {"invitee@example.com"} <= {m["email"] for m in members}
    # An invite to someone who is a member already never changes their role.
    r = admin.post(
        "/api/orgs/1/invites",
        json={"email": email_of(Role.ADMIN), "role": "viewer"},
        headers=csrf(admin),
    )
    with world.client() as c:
        ok = c.post("/api/invites/accept", json={"token": r.json()["token"], "password": PASSWORD})
        assert ok.status_code == 200 and ok.json()["orgs"][0]["role"] == "admin"
    admin.close()


def test_reset_link_from_the_cli_sets_a_password_once_and_ends_sessions(world: World) -> None:
    email = "resetme@example.com"
    created = create_user_cli(world.data_dir, email, "first password 1", "--role", "member")
    assert created.returncode == 0, created.stderr
    old = world.login(email, "first password 1")
    link = run_cli("user", "reset-link", email, data_dir=world.data_dir).stdout.strip()
    token = link.rsplit("/", 1)[1]
    with world.client() as c:
        assert (
            c.post(
                "/api/password_reset", json={"token": token, "password": "second password 2"}
            ).status_code
            == 204
        )
        assert (
            c.post(
                "/api/password_reset", json={"token": token, "password": "third password 33"}
            ).status_code
            == 404
        )
    assert old.get("/api/me").status_code == 401  # the old session ended
    world.login(email, "second password 2").close()
    old.close()


def test_roles_are_changed_by_admins_and_owners_only_by_owners(world: World) -> None:
    owner = world.login(email_of(Role.OWNER))
    admin = world.login(email_of(Role.ADMIN))
    members = {m["email"]: m["user_id"] for m in owner.get("/api/orgs/1/members").json()}
    viewer_id, owner_id = members[email_of(Role.VIEWER)], members[email_of(Role.OWNER)]
    r = admin.patch(
        f"/api/orgs/1/members/{viewer_id}", json={"role": "member"}, headers=csrf(admin)
    )
    assert r.status_code == 200 and r.json()["role"] == "member"
    r = admin.patch(f"/api/orgs/1/members/{viewer_id}", json={"role": "owner"}, headers=csrf(admin))
    assert r.status_code == 403
    r = owner.patch(f"/api/orgs/1/members/{owner_id}", json={"role": "admin"}, headers=csrf(owner))
    assert r.status_code == 400 and "last owner" in r.json()["detail"]
    r = admin.patch(
        f"/api/orgs/1/members/{viewer_id}", json={"role": "viewer"}, headers=csrf(admin)
    )
    assert r.status_code == 200
    audit = admin.get("/api/orgs/1/audit").json()
    actions = {e["action"] for e in audit}
    assert {"login.success", "member.update", "key.create"} <= actions, actions
    assert all(e["org_id"] in (1, None) for e in audit)
    owner.close()
    admin.close()


def test_legacy_key_rotation(world: World) -> None:
    admin = world.login(email_of(Role.ADMIN))
    old = world.legacy_a
    r = admin.post(f"/api/projects/{world.a}/secret_key/rotate", headers=csrf(admin))
    assert r.status_code == 200, r.text
    world.legacy_a = new = r.json()["api_key"]
    with world.client(headers=_bearer(old)) as c:
        assert c.get("/api/projects").status_code == 401
    with world.client(headers=_bearer(new)) as c:
        assert [p["id"] for p in c.get("/api/projects").json()] == [world.a]
    admin.close()


def test_per_project_access(world: World) -> None:
    """A member limited to project A sees A only: C (same organisation) is 404 like B."""
    owner = world.login(email_of(Role.OWNER))
    members = {m["email"]: m["user_id"] for m in owner.get("/api/orgs/1/members").json()}
    uid = members[email_of(Role.MEMBER)]
    path = f"/api/orgs/1/members/{uid}"
    foreign = owner.patch(path, json={"projects": [world.b]}, headers=csrf(owner))
    assert foreign.status_code == 404  # B is another organisation's
    r = owner.patch(path, json={"projects": [world.a]}, headers=csrf(owner))
    assert r.status_code == 200 and r.json()["projects"] == [world.a]
    assert r.json()["role"] == "member"  # unchanged
    member = world.login(email_of(Role.MEMBER))
    try:
        assert [p["id"] for p in member.get("/api/projects").json()] == [world.a]
        assert member.get(f"/api/projects/{world.c}/insights").status_code == 404
        assert member.get(f"/api/projects/{world.a}/insights").status_code == 200
    finally:
        r = owner.patch(path, json={"projects": None}, headers=csrf(owner))
        assert r.json()["projects"] is None
        assert member.get(f"/api/projects/{world.c}/insights").status_code == 200
        member.close()
        owner.close()
