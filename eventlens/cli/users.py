"""`eventlens user create|list|invite|reset-link`, `eventlens org create`, `eventlens key create`.

Passwords are never arguments (they would land in shell history and `ps`): `user create` asks
at a prompt, or reads one line from stdin when stdin is not a terminal (`--password-stdin`
forces that). Invite and reset links are printed, to be passed on by hand, and also mailed
when an SMTP server is configured (`smtp_host`; eventlens/accounts/mail.py); the dashboard
accepts them at `#/invite/<token>` and `#/reset/<token>`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from eventlens.accounts.mail import invite_mail, mail_enabled, reset_mail, send_link
from eventlens.accounts.policy import Role
from eventlens.accounts.service import AccountService
from eventlens.accounts.store import AccountStore, parse_role, parse_scopes
from eventlens.accounts.throttle import LoginThrottle
from eventlens.cli.common import DataDirOption, console, print_json, settings_for
from eventlens.cli.errors import describe, exit_code, fail
from eventlens.errors import EventLensError, InvalidInput
from eventlens.projects.store import SqliteMetadataStore

user_app = typer.Typer(help="People: create users, invite, reset passwords.", no_args_is_help=True)
org_app = typer.Typer(help="Organisations.", no_args_is_help=True)
key_app = typer.Typer(help="Personal API keys (phx_...).", no_args_is_help=True)

UrlOption = typer.Option(
    None,
    "--url",
    help="The dashboard's address for the link (default: public_url, else http://HOST:PORT).",
)


@contextmanager
def open_accounts(data_dir: Path | None) -> Iterator[AccountService]:
    settings = settings_for(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    projects = SqliteMetadataStore(settings.meta_db)
    store = AccountStore(settings.meta_db)
    try:
        yield AccountService(
            store,
            projects,
            LoginThrottle(settings.login_max_failures, settings.login_window),
            settings.session_idle_timeout,
            settings.session_max_age,
        )
    finally:
        store.close()
        projects.close()


def read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise InvalidInput("no password on stdin (one line expected)", field="password")
        return line
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Repeat", hide_input=True) != first:
        raise InvalidInput("the two passwords differ", field="password")
    return str(first)


def _base(url: str | None, data_dir: Path | None) -> str:
    if url:
        return url.rstrip("/")
    s = settings_for(data_dir)
    return s.public_url.rstrip("/") or f"http://{s.host}:{s.port}"


def _mail(data_dir: Path | None, to: str, subject: str, text: str) -> None:
    """Mail the link just printed when SMTP is configured. A failure exits with Unavailable's
    code after saying so; the printed link is valid all the same."""
    settings = settings_for(data_dir)
    if not mail_enabled(settings):
        return
    try:
        send_link(settings, to, subject, text)
    except EventLensError as exc:
        fail(
            f"mail not sent ({describe(exc)}); the link above is valid: pass it on", exit_code(exc)
        )
    console.print(f"sent to {to}", highlight=False)


@user_app.command("create")
def create(
    email: str,
    owner: bool = typer.Option(False, "--owner", help="Owner of the organisation (first run)."),
    org: int = typer.Option(1, "--org", help="Organisation id (1 = the default one)."),
    role: str = typer.Option("member", "--role", help="owner, admin, member or viewer."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read it from stdin."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Create a user in an organisation (the password is asked for, never an argument)."""
    chosen = Role.OWNER if owner else parse_role(role, field="--role")
    password = read_password(password_stdin)
    with open_accounts(data_dir) as accounts:
        if chosen is Role.OWNER:
            uid = accounts.create_owner(email, password, org)
        else:
            if org == 1:
                accounts.store.ensure_default_org()
            accounts.store.org_name(org)
            uid = accounts.store.create_user(email, password).id
            accounts.store.set_membership(uid, org, chosen)
            accounts.store.audit("member.update", org_id=org, user_id=uid, role=chosen.value)
    console.print(f"user {uid} {email}: {chosen.value} of organisation {org}")


@user_app.command("list")
def list_(
    org: int = typer.Option(1, "--org"),
    as_json: bool = typer.Option(False, "--json"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """The organisation's members and roles."""
    with open_accounts(data_dir) as accounts:
        members = accounts.store.members(org)
    if as_json:
        print_json(members)
        return
    for m in members:
        console.print(f"{m['user_id']}\t{m['email']}\t{m['role']}")


@user_app.command("invite")
def invite(
    email: str,
    org: int = typer.Option(1, "--org"),
    role: str = typer.Option("member", "--role"),
    url: str | None = UrlOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Print a one-time invite link (valid 7 days); mail it too when SMTP is configured."""
    with open_accounts(data_dir) as accounts:
        if org == 1:
            accounts.store.ensure_default_org()
        chosen = parse_role(role, field="--role")
        token = accounts.invite(email, org, chosen, by=None)
        org_name = accounts.store.org_name(org)
    link = f"{_base(url, data_dir)}/#/invite/{token}"
    console.print(link, soft_wrap=True, highlight=False)
    _mail(data_dir, email, *invite_mail(link, org_name, chosen.value))


@user_app.command("reset-link")
def reset_link(
    email: str, url: str | None = UrlOption, data_dir: Path | None = DataDirOption
) -> None:
    """Print a one-time password-reset link (valid 1 hour); mail it too when SMTP is set up."""
    with open_accounts(data_dir) as accounts:
        token = accounts.reset_link_token(email)
    link = f"{_base(url, data_dir)}/#/reset/{token}"
    console.print(link, soft_wrap=True, highlight=False)
    _mail(data_dir, email, *reset_mail(link))


@org_app.command("create")
def create_org(
    name: str,
    owner: str | None = typer.Option(None, "--owner", help="Email of an existing user."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Create an organisation; prints its id (give projects to it with `project create --org`)."""
    with open_accounts(data_dir) as accounts:
        org_id = accounts.store.create_org(name)
        if owner is not None:
            user = accounts.store.user_by_email(owner)
            if user is None:
                raise InvalidInput(f"no user with email {owner!r}", field="--owner")
            accounts.store.set_membership(user.id, org_id, Role.OWNER)
    console.print(f"organisation {org_id} {name}")


@key_app.command("create")
def create_key(
    email: str,
    scope: list[str] = typer.Option(..., "--scope", help="query:read, insight:read, ..."),
    label: str = typer.Option("cli", "--label"),
    project: int | None = typer.Option(None, "--project", help="Only this project."),
    expires_days: float | None = typer.Option(None, "--expires-days"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Create a personal API key for a user; printed once."""
    with open_accounts(data_dir) as accounts:
        user = accounts.store.user_by_email(email)
        if user is None:
            raise InvalidInput(f"no user with email {email!r}", field="email")
        principal = accounts.user_principal(user.id)
        expires = None if expires_days is None else time.time() + expires_days * 86400
        key, _ = accounts.create_key(principal, label, parse_scopes(scope), project, expires)
    console.print(key, soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(org_app, name="org")
    app.add_typer(key_app, name="key")
