"""The dashboard's accounts in a real Chromium against a real server: login and logout,
invite acceptance, a viewer who cannot save, session expiry, a pasted phc_ token.

The server's sessions end after 8 s idle (EVENTLENS_SESSION_IDLE_TIMEOUT), so expiry is
observable; every other step is quicker than that between two requests.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from eventlens.accounts.policy import Role
from tests.accounts.conftest import PASSWORD, World, build_world, email_of
from tests.support.server import ServerProcess, run_cli

IDLE = 8


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("accounts-ui") / "data"
    data_dir.mkdir()
    made = build_world(data_dir)
    server = ServerProcess(data_dir, env={"EVENTLENS_SESSION_IDLE_TIMEOUT": str(IDLE)}).start()
    try:
        yield World(server=server, data_dir=data_dir, **made)
    finally:
        server.stop()


@pytest.fixture
def page_errors(page: Page) -> Iterator[list[str]]:
    """Console errors other than the failed requests a test provokes on purpose (401/403/404)."""
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and not re.search(r"status of 40[134]", msg.text):
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(20_000)
    yield errors
    assert errors == []


def sign_in(page: Page, world: World, email: str, password: str = PASSWORD) -> None:
    page.goto(world.server.url + "/#/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#account-name")).to_have_text(email)


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("alert")).to_contain_text("Logged out.")  # done, not in flight


def test_login_logout(page: Page, world: World, page_errors: list[str]) -> None:
    page.goto(world.server.url + "/#/")
    page.get_by_label("Email").fill(email_of(Role.MEMBER))
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong email or password")
    sign_in(page, world, email_of(Role.MEMBER))
    expect(page.locator("#project-select option")).to_have_count(2)  # org 1's A and C
    expect(page.locator("#nav-members")).to_be_hidden()  # a member manages nobody
    cookie = next(c for c in page.context.cookies() if c["name"] == "eventlens_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("alert")).to_contain_text("Logged out.")
    # The server ended it: the old cookie no longer works anywhere.
    r = httpx.get(world.server.url + "/api/me", cookies={"eventlens_session": cookie["value"]})
    assert r.status_code == 401
    page.reload()
    expect(page.get_by_label("Email")).to_be_visible()


def test_phc_token_pasted_says_what_it_is(page: Page, world: World, page_errors: list[str]) -> None:
    page.goto(world.server.url + "/#/")
    page.get_by_label("Personal API key").fill("phc_SomeProjectToken")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("public capture token")


def test_invite_acceptance(page: Page, world: World, page_errors: list[str]) -> None:
    sign_in(page, world, email_of(Role.ADMIN))
    page.get_by_role("link", name="Members").click()
    expect(page.get_by_role("cell", name=email_of(Role.VIEWER))).to_be_visible()
    page.locator("#invite-email").fill("newcomer@example.com")
    page.locator("#invite-role").select_option("viewer")
    page.get_by_role("button", name="Create invite link").click()
    link = page.locator("#invite-link").inner_text()
    assert "/#/invite/" in link
    log_out(page)
    page.goto(link)
    page.get_by_label("Password").fill("newcomer's passphrase")
    page.get_by_role("button", name="Accept invite").click()
    expect(page.locator("#account-name")).to_have_text("newcomer@example.com")
    # One use only.
    log_out(page)
    page.goto(link)
    page.get_by_label("Password").fill("another passphrase")
    page.get_by_role("button", name="Accept invite").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown, used or expired")


def test_viewer_cannot_save(page: Page, world: World, page_errors: list[str]) -> None:
    sign_in(page, world, email_of(Role.VIEWER))
    page.get_by_role("button", name="Run query").click()
    expect(page.locator("#cannot-save")).to_contain_text("not save them")
    expect(page.get_by_role("button", name="Save insight")).to_have_count(0)
    # And the server refuses it even when the page is bypassed (with a valid CSRF token).
    status = page.evaluate(
        """async (pid) => {
            const csrf = document.cookie.match(/eventlens_csrf=([^;]+)/)[1];
            const r = await fetch(`/api/projects/${pid}/insights`, {method: "POST",
              headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
              body: JSON.stringify({name: "x", query: {kind: "TrendsQuery",
                series: [{event: "$pageview"}]}})});
            return r.status;
        }""",
        world.a,
    )
    assert status == 403


def test_session_expiry(page: Page, world: World, page_errors: list[str]) -> None:
    sign_in(page, world, email_of(Role.MEMBER))
    time.sleep(IDLE + 1.5)
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("session has expired")
    expect(page.get_by_label("Email")).to_be_visible()


def test_keys_page_shows_a_key_once(page: Page, world: World, page_errors: list[str]) -> None:
    sign_in(page, world, email_of(Role.OWNER))
    page.get_by_role("link", name="Keys").click()
    page.get_by_label("Label").fill("browser-made")
    page.get_by_label("Only for project").select_option(str(world.a))
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text()
    assert key.startswith("phx_")
    row = page.get_by_role("row", name=re.compile("browser-made"))
    expect(row).to_contain_text(key[:8])
    assert key not in row.inner_text()  # the list has the mask only
    r = httpx.get(world.server.url + "/api/projects", headers={"Authorization": f"Bearer {key}"})
    assert [p["id"] for p in r.json()] == [world.a]
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("row", name=re.compile("browser-made"))).to_have_count(0)
    r = httpx.get(world.server.url + "/api/projects", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401


def test_password_reset_link(page: Page, world: World, page_errors: list[str]) -> None:
    email = email_of(Role.OWNER, 2)
    link = run_cli(
        "user", "reset-link", email, "--url", world.server.url, data_dir=world.data_dir
    ).stdout.strip()
    page.goto(link)
    page.get_by_label("New password").fill("reset from the browser")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("alert")).to_contain_text("Password changed")
    sign_in(page, world, email, "reset from the browser")
    expect(page.locator("#project-select option")).to_have_count(1)  # org 2 owns B only
