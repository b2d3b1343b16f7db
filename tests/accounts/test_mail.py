"""Invite and reset links by mail, through a real SMTP server on loopback (aiosmtpd).

The CLI runs as a subprocess and the API on a real server process, both configured with the
`EVENTLENS_SMTP_*` variables; the SMTP server captures what arrives. Each mailed link is then
used, so the test shows the mail carries a working one-time link, not just some text. "SMTP
down" is a port with nothing listening: the link is still printed or answered, and works.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from eventlens.accounts.mail import send_link
from eventlens.accounts.policy import Role
from eventlens.cli.errors import UNAVAILABLE
from eventlens.cli.users import open_accounts
from eventlens.config import Settings
from eventlens.errors import InvalidInput, Unavailable
from tests.accounts.conftest import PASSWORD, build_world, csrf, email_of
from tests.support.server import ServerProcess, free_port

SENDER = "analytics@example.com"
LINK = re.compile(r"https?://\S+/#/(invite|reset)/(\S+)")


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), msg))
        return "250 OK"

    def only(self) -> tuple[str, list[str], EmailMessage]:
        assert len(self.messages) == 1, self.messages
        return self.messages.pop()


@dataclass
class Smtp:
    port: int
    inbox: Inbox
    controller: Controller
    running: bool = True

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    server = Smtp(port, inbox, controller)
    try:
        yield server
    finally:
        server.stop()


def smtp_env(port: int) -> dict[str, str]:
    return {
        "EVENTLENS_SMTP_HOST": "127.0.0.1",
        "EVENTLENS_SMTP_PORT": str(port),
        "EVENTLENS_SMTP_FROM": SENDER,
        "EVENTLENS_SMTP_STARTTLS": "0",  # aiosmtpd here has no certificate a client would trust
        "EVENTLENS_SMTP_TIMEOUT_SECONDS": "5",
    }


def cli(data_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventlens", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def body_link(msg: EmailMessage) -> tuple[str, str, str]:
    body = msg.get_body(("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, body.get_content()
    return found.group(0), found.group(1), found.group(2)


def settings(port: int, **kw: Any) -> Settings:
    base = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_from": SENDER,
        "smtp_starttls": False,
        "smtp_timeout_seconds": 5.0,
    }
    return Settings(**{**base, **kw})


def test_cli_reset_link_is_mailed_printed_and_works(tmp_path: Path, smtp: Smtp) -> None:
    build_world(tmp_path)
    who = email_of(Role.VIEWER)
    done = cli(
        tmp_path, smtp_env(smtp.port), "user", "reset-link", who, "--url", "https://a.example"
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()[0].strip()
    assert printed.startswith("https://a.example/#/reset/")
    assert f"sent to {who}" in done.stdout
    mail_from, rcpt, msg = smtp.inbox.only()
    assert (mail_from, rcpt) == (SENDER, [who])
    assert (msg["From"], msg["To"]) == (SENDER, who)
    assert msg["Subject"] == "Reset your EventLens password"
    link, kind, token = body_link(msg)
    assert (link, kind) == (printed, "reset")
    with open_accounts(tmp_path) as accounts:
        accounts.reset_password(token, "a brand new password", "test")
        assert accounts.login(who, "a brand new password", "test").session.user_id > 0


def test_cli_invite_is_mailed_with_the_org_and_role(tmp_path: Path, smtp: Smtp) -> None:
    build_world(tmp_path)
    done = cli(
        tmp_path,
        {**smtp_env(smtp.port), "EVENTLENS_PUBLIC_URL": "https://analytics.example.com/"},
        "user",
        "invite",
        "newcomer@example.com",
        "--role",
        "viewer",
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()[0].strip()
    assert printed.startswith("https://analytics.example.com/#/invite/")  # public_url
    assert "sent to newcomer@example.com" in done.stdout
    _, rcpt, msg = smtp.inbox.only()
    assert rcpt == ["newcomer@example.com"] and msg["To"] == "newcomer@example.com"
    assert msg["Subject"].startswith("You are invited to ")
    link, kind, token = body_link(msg)
    assert (link, kind) == (printed, "invite") and "as viewer" in msg.get_content()
    with open_accounts(tmp_path) as accounts:
        joined = accounts.accept_invite(token, "the invitee's password", "test")
        assert accounts.store.memberships(joined.session.user_id)[1].role is Role.VIEWER


def test_cli_with_smtp_down_prints_the_link_and_fails(tmp_path: Path) -> None:
    build_world(tmp_path)
    dead = free_port()  # nothing listens there
    who = email_of(Role.MEMBER)
    done = cli(tmp_path, smtp_env(dead), "user", "reset-link", who, "--url", "http://x")
    assert done.returncode == UNAVAILABLE, (done.stdout, done.stderr)
    printed = done.stdout.splitlines()[0].strip()
    assert printed.startswith("http://x/#/reset/") and "sent to" not in done.stdout
    assert "mail not sent" in done.stderr and f"127.0.0.1:{dead}" in done.stderr
    with open_accounts(tmp_path) as accounts:  # the printed link is valid all the same
        accounts.reset_password(printed.rsplit("/", 1)[1], "set after all, by hand", "test")


def test_no_smtp_host_means_no_mail_attempt(tmp_path: Path) -> None:
    build_world(tmp_path)
    done = cli(tmp_path, {"EVENTLENS_SMTP_HOST": ""}, "user", "reset-link", email_of(Role.ADMIN))
    assert done.returncode == 0, done.stderr
    assert "/#/reset/" in done.stdout and "sent to" not in done.stdout


def test_login_refused_names_the_server_never_the_password() -> None:
    secret = "s3cret-smtp-pa55word"

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"right one"
        return AuthResult(success=ok, handled=False)

    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,  # loopback test server; production mail uses STARTTLS
    )
    controller.start()
    try:
        with pytest.raises(Unavailable) as refused:
            send_link(
                settings(port, smtp_username="bot", smtp_password=secret), "a@example.com", "s", "t"
            )
        assert f"127.0.0.1:{port}" in refused.value.message and "'bot'" in refused.value.message
        assert secret not in refused.value.message and secret not in repr(refused.value)
        assert secret not in repr(settings(port, smtp_password=secret))
        send_link(
            settings(port, smtp_username="bot", smtp_password="right one"),
            "a@example.com",
            "s",
            "t",
        )
        assert inbox.only()[1] == ["a@example.com"]
    finally:
        controller.stop()


def test_header_injection_is_refused(smtp: Smtp) -> None:
    with pytest.raises(InvalidInput):
        send_link(settings(smtp.port), "a@example.com\r\nBcc: evil@example.com", "s", "t")
    assert smtp.inbox.messages == []


@pytest.fixture
def mail_world(tmp_path: Path, smtp: Smtp) -> Iterator[tuple[ServerProcess, Smtp]]:
    build_world(tmp_path)
    server = ServerProcess(tmp_path, env=smtp_env(smtp.port)).start()
    try:
        yield server, smtp
    finally:
        server.stop()


def test_api_invite_is_mailed_then_answers_mail_not_sent_when_smtp_is_down(
    mail_world: tuple[ServerProcess, Smtp],
) -> None:
    server, smtp = mail_world
    with httpx.Client(base_url=server.url, timeout=60) as admin:
        r = admin.post("/api/login", json={"email": email_of(Role.ADMIN), "password": PASSWORD})
        assert r.status_code == 200, r.text
        made = admin.post(
            "/api/orgs/1/invites",
            json={"email": "mailed@example.com", "role": "member"},
            headers=csrf(admin),
        )
        assert made.status_code == 201, made.text
        answer = made.json()
        assert answer["mailed"] is True and answer["mail_error"] is None
        assert answer["link"] == f"/#/invite/{answer['token']}"  # still there for the admin
        _, rcpt, msg = smtp.inbox.only()
        assert rcpt == ["mailed@example.com"] and msg["From"] == SENDER
        link, kind, token = body_link(msg)
        assert link == f"{server.url}/#/invite/{answer['token']}" and kind == "invite"
        assert token == answer["token"]
        with httpx.Client(base_url=server.url, timeout=60) as invitee:
            ok = invitee.post(
                "/api/invites/accept", json={"token": token, "password": "my own password!"}
            )
            assert ok.status_code == 200, ok.text
            assert ok.json()["email"] == "mailed@example.com"

        smtp.stop()  # SMTP down: nothing listens on its port any more
        down = admin.post(
            "/api/orgs/1/invites",
            json={"email": "unmailed@example.com", "role": "viewer"},
            headers=csrf(admin),
        )
        assert down.status_code == 201, down.text
        body = down.json()
        assert body["mailed"] is False and f"127.0.0.1:{smtp.port}" in body["mail_error"]
        with httpx.Client(base_url=server.url, timeout=60) as invitee:
            ok = invitee.post(
                "/api/invites/accept",
                json={"token": body["token"], "password": "set by hand link"},
            )
            assert ok.status_code == 200, ok.text
