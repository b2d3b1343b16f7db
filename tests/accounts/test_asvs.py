"""OWASP ASVS 4.0 level-1 requirements that apply to accounts, each checked against a real
server (ids in the test names' docstrings): session management (V3), password storage and
rules (V2.1, V2.4), CSRF (V4.2.2 / V13), brute force (V2.2.1), and no user enumeration.

The server here runs with short timeouts and a low throttle, so expiry and lock-out are
observable in seconds: idle 2 s, absolute 6 s, 3 failures per account (30 per address),
behind a trusted proxy (Secure cookies when X-Forwarded-Proto says https).
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie

import httpx
import pytest

from eventlens.accounts.policy import Role
from tests.accounts.conftest import PASSWORD, World, build_world, csrf, email_of
from tests.support.server import ServerProcess

STRICT_ENV = {
    "EVENTLENS_SESSION_IDLE_TIMEOUT": "2",
    "EVENTLENS_SESSION_MAX_AGE": "6",
    "EVENTLENS_LOGIN_MAX_FAILURES": "3",
    "EVENTLENS_LOGIN_WINDOW": "60",
    "EVENTLENS_TRUST_PROXY": "1",
}


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("strict") / "data"
    data_dir.mkdir()
    made = build_world(data_dir)
    server = ServerProcess(data_dir, env=STRICT_ENV).start()
    try:
        yield World(server=server, data_dir=data_dir, **made)
    finally:
        server.stop()


def _cookies(r: httpx.Response) -> dict[str, SimpleCookie]:
    out = {}
    for header in r.headers.get_list("set-cookie"):
        c: SimpleCookie = SimpleCookie()
        c.load(header)
        out[next(iter(c))] = c
    return out


def _login(c: httpx.Client, email: str, password: str = PASSWORD, **kw: object) -> httpx.Response:
    return c.post("/api/login", json={"email": email, "password": password}, **kw)  # type: ignore[arg-type]


def test_session_cookie_attributes(strict: World) -> None:
    """V3.4.1-3.4.3: HttpOnly, SameSite, Secure when the browser is on HTTPS (trusted proxy)."""
    with strict.client() as c:
        plain = _cookies(_login(c, email_of(Role.VIEWER)))
        https = _cookies(_login(c, email_of(Role.VIEWER), headers={"X-Forwarded-Proto": "https"}))
    session = plain["eventlens_session"]["eventlens_session"]
    assert session["httponly"] and session["samesite"].lower() == "lax"
    assert not session["secure"]  # plain http: a Secure cookie would never come back
    assert https["eventlens_session"]["eventlens_session"]["secure"]
    assert https["eventlens_csrf"]["eventlens_csrf"]["secure"]
    # The CSRF cookie is readable by the page's script (double submit), the session is not.
    assert not plain["eventlens_csrf"]["eventlens_csrf"]["httponly"]


def test_session_token_is_random_and_rotated_on_login(strict: World) -> None:
    """V3.2.1 (new token on authentication), V3.2.2 (>= 64 bits of entropy)."""
    c = strict.login(email_of(Role.MEMBER))
    first = c.cookies.get("eventlens_session") or ""
    assert len(first) >= 40  # 32 random bytes, urlsafe base64
    r = _login(c, email_of(Role.MEMBER))
    second = c.cookies.get("eventlens_session")
    assert r.status_code == 200 and second and second != first
    with strict.client() as other:
        other.cookies.set("eventlens_session", first)
        assert other.get("/api/me").status_code == 401  # the replaced session is gone
    c.close()


def test_session_store_holds_hashes_only(strict: World) -> None:
    """V3.2.3 / V2.4.1: no session id, key or password in clear in the database."""
    c = strict.login(email_of(Role.ADMIN))
    secret = c.cookies.get("eventlens_session") or ""
    db = sqlite3.connect(strict.data_dir / "meta.db")
    try:
        dump = "\n".join(db.iterdump())
        hashes = [r[0] for r in db.execute("SELECT password_hash FROM users")]
    finally:
        db.close()
    assert secret not in dump and PASSWORD not in dump
    assert all(key not in dump for key in strict.keys.values())
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    c.close()


def test_idle_timeout(strict: World) -> None:
    """V3.3.2 (idle): a session unused for longer than the idle timeout ends."""
    c = strict.login(email_of(Role.VIEWER))
    assert c.get("/api/me").status_code == 200
    time.sleep(3)
    r = c.get("/api/me")
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    c.close()


def test_absolute_timeout(strict: World) -> None:
    """V3.3.2 (absolute): a session ends at its maximum age even while in use."""
    c = strict.login(email_of(Role.VIEWER))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert c.get("/api/me").status_code == 200
        time.sleep(1.2)
    time.sleep(1.5)
    assert c.get("/api/me").status_code == 401
    c.close()


def test_password_change_ends_every_other_session(strict: World) -> None:
    """V3.3.3: after a password change, the other sessions end; this one is renewed."""
    email = email_of(Role.OWNER, 2)
    laptop, phone = strict.login(email), strict.login(email)
    new = "a brand new passphrase"
    r = laptop.post(
        "/api/me/password",
        json={"current_password": PASSWORD, "new_password": new},
        headers=csrf(laptop),
    )
    assert r.status_code == 200, r.text
    assert phone.get("/api/me").status_code == 401
    assert laptop.get("/api/me").status_code == 200
    wrong = laptop.post(
        "/api/me/password",
        json={"current_password": "not it at all", "new_password": PASSWORD},
        headers=csrf(laptop),
    )
    assert wrong.status_code == 401
    back = laptop.post(
        "/api/me/password",
        json={"current_password": new, "new_password": PASSWORD},
        headers=csrf(laptop),
    )
    assert back.status_code == 200
    laptop.close()
    phone.close()


def test_csrf_token_required_for_cookie_writes(strict: World) -> None:
    """V4.2.2 / V13.2.3: a cookie request that changes state needs the session's CSRF token;
    a cross-site login is refused; a Bearer request needs none."""
    c = strict.login(email_of(Role.MEMBER))
    body = {"name": "x", "query": {"kind": "TrendsQuery", "series": [{"event": "$pageview"}]}}
    path = f"/api/projects/{strict.a}/insights"
    missing = c.post(path, json=body)
    wrong = c.post(path, json=body, headers={"X-CSRF-Token": "forged"})
    assert missing.status_code == wrong.status_code == 403
    assert "X-CSRF-Token" in missing.json()["detail"]
    assert c.post(path, json=body, headers=csrf(c)).status_code == 201
    assert c.get(path).status_code == 200  # reads need no token
    cross = _login(c, email_of(Role.MEMBER), headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    # Behind the trusted proxy, the browser's host is the forwarded one.
    proxied = _login(
        c,
        email_of(Role.MEMBER),
        headers={"Origin": "https://a.example", "X-Forwarded-Host": "a.example"},
    )
    assert proxied.status_code == 200
    with strict.client(headers={"Authorization": f"Bearer {strict.keys[Role.MEMBER]}"}) as k:
        assert k.post(path, json=body).status_code == 201
    c.close()


def test_account_throttle_429_with_retry_after(strict: World) -> None:
    """V2.2.1: failed logins per account are limited; the limit answers 429 with Retry-After
    and then refuses even the right password (no oracle while throttled)."""
    email = email_of(Role.ADMIN)
    with strict.client() as c:
        for _ in range(3):
            assert _login(c, email, "wrong password!!").status_code == 401
        r = _login(c, email, "wrong password!!")
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert _login(c, email).status_code == 429
        metrics = c.get("/metrics").text
    assert 'eventlens_logins_total{outcome="throttled"}' in metrics
    assert 'eventlens_logins_total{outcome="failure"}' in metrics


def test_address_throttle_across_accounts(strict: World) -> None:
    """V2.2.1: one address trying many accounts is limited too (30 = 10 x 3 here)."""
    with strict.client(headers={"X-Forwarded-For": "203.0.113.9"}) as c:
        answers = [
            _login(c, f"spray{i}@example.com", "wrong password!!").status_code for i in range(31)
        ]
    assert answers[:30] == [401] * 30 and answers[30] == 429
    with strict.client(headers={"X-Forwarded-For": "203.0.113.10"}) as c:
        assert _login(c, "spray99@example.com", "wrong password!!").status_code == 401


def test_no_user_enumeration_by_timing(strict: World) -> None:
    """V2.2 / V3: a wrong email costs what a wrong password costs (the dummy hash). Median of
    interleaved attempts; the ratio stays near 1 where a missing hash would make it ~0.01."""
    times: dict[str, list[float]] = {"user": [], "nobody": []}
    with strict.client(headers={"X-Forwarded-For": "198.51.100.7"}) as c:
        for i in range(3):  # 3: the account throttle's limit here, so every answer is a 401
            for who, email in (("user", email_of(Role.VIEWER)), ("nobody", f"ghost{i}@x.org")):
                t = time.perf_counter()
                r = _login(c, email, f"wrong password {i}")
                times[who].append(time.perf_counter() - t)
                assert r.status_code == 401
    ratio = statistics.median(times["nobody"]) / statistics.median(times["user"])
    assert 0.5 < ratio < 2.0, times


def test_password_rules(strict: World) -> None:
    """V2.1.1 (>= 12 characters), V2.1.2 (64+ allowed), V2.1.9 (no composition rules)."""
    c = strict.login(email_of(Role.MEMBER))
    for pw, status in (("elevenchars", 400), ("a" * 12, 200), ("ü " * 60, 200)):
        r = c.post(
            "/api/me/password",
            json={"current_password": PASSWORD, "new_password": pw},
            headers=csrf(c),
        )
        assert r.status_code == status, (pw, r.text)
        if status == 200:
            r = c.post(
                "/api/me/password",
                json={"current_password": pw, "new_password": PASSWORD},
                headers=csrf(c),
            )
            assert r.status_code == 200
    c.close()
