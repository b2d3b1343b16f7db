"""`eventlens demo`: a project full of realistic events and a running server, in one command.

First run: creates the project "Demo", generates events ending now, bulk-imports them, saves the
project's id, token and API key in `<data-dir>/demo-credentials.json` (mode 0600: the API key
is a secret and is shown only once by `project create`), then serves. A rerun finds that file
and reuses the project without importing again; an import cut short resumes (the generated
file is kept until the import has finished, and bulk import is resumable per file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import typer

from eventlens.cli.common import DataDirOption, console, settings_for
from eventlens.cli.generate import progress_bar
from eventlens.cli.serve import bind, bound_port, run_server
from eventlens.config import Settings
from eventlens.errors import NotFound
from eventlens.generate import parse_count, write_file
from eventlens.projects.store import SqliteMetadataStore

DEMO_NAME = "Demo"
DEMO_TIMEZONE = "America/New_York"
CREDENTIALS_FILE = "demo-credentials.json"


@dataclass
class DemoState:
    project_id: int
    token: str
    api_key: str
    imported: bool = False
    events_file: str | None = None  # the generated file while its import is not finished
    # The demo's dashboard login (an owner of the default organisation); None in files written
    # before accounts existed, made on the next run.
    login_email: str | None = None
    login_password: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__, option=orjson.OPT_INDENT_2)


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / CREDENTIALS_FILE


def load_state(settings: Settings) -> DemoState | None:
    path = credentials_path(settings)
    if not path.exists():
        return None
    raw: dict[str, Any] = orjson.loads(path.read_bytes())
    return DemoState(**raw)


def save_state(settings: Settings, state: DemoState) -> None:
    """Write atomically, readable and writable by the owner only (it holds the API key)."""
    path = credentials_path(settings)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is masked by the umask and ignored if it exists
        os.write(fd, state.to_json())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_project(settings: Settings) -> tuple[DemoState, bool]:
    """The demo project from the credentials file, or a new one. Returns (state, created)."""
    store = SqliteMetadataStore(settings.meta_db)
    try:
        state = load_state(settings)
        if state is not None:
            try:
                if store.get_project(state.project_id).token == state.token:
                    return state, False
            except NotFound:
                pass
        created = store.create_project(DEMO_NAME, DEMO_TIMEZONE)
    finally:
        store.close()
    state = DemoState(created.project.id, created.project.token, created.api_key)
    save_state(settings, state)
    return state, True


DEMO_EMAIL = "demo@eventlens.local"


def ensure_login(settings: Settings, state: DemoState) -> None:
    """The demo's owner login, made once with a random password saved with the credentials."""
    import secrets

    from eventlens.cli.users import open_accounts

    if state.login_email is not None:
        return
    password = secrets.token_urlsafe(12)
    with open_accounts(settings.data_dir) as accounts:
        if accounts.store.user_by_email(DEMO_EMAIL) is None:
            accounts.create_owner(DEMO_EMAIL, password)
        else:
            user = accounts.store.user_by_email(DEMO_EMAIL)
            assert user is not None
            accounts.store.set_password(user.id, password)
    state.login_email, state.login_password = DEMO_EMAIL, password
    save_state(settings, state)


def load_events(settings: Settings, state: DemoState, n_events: int, seed: int, days: int) -> None:
    """Generate (ending now) and import the demo events unless already done; idempotent."""
    from eventlens.ingest.bulk_import import import_file

    if state.imported:
        return
    if state.events_file is None or not Path(state.events_file).exists():
        path = settings.data_dir / "demo" / "events.parquet"
        with progress_bar() as bar:
            task = bar.add_task("generating", total=n_events)
            write_file(
                path,
                n_events,
                seed=seed,
                end=datetime.now(UTC),
                days=days,
                progress=lambda k: bar.advance(task, k),
            )
        state.events_file = str(path)
        save_state(settings, state)
    path = Path(state.events_file)
    with progress_bar() as bar:
        task = bar.add_task("importing", total=n_events)
        result = import_file(
            settings, state.project_id, path, progress=lambda k: bar.advance(task, k)
        )
    console.print(
        f"imported {result.imported:,} events "
        f"({result.duplicates:,} duplicates, {result.invalid:,} invalid)"
    )
    state.imported, state.events_file = True, None
    save_state(settings, state)
    path.unlink(missing_ok=True)


def snippet(url: str, token: str) -> str:
    return (
        "pip install posthog\n\n"
        "from posthog import Posthog\n\n"
        f'posthog = Posthog("{token}", host="{url}")\n'
        'posthog.capture("signup", distinct_id="user-123", properties={"plan": "free"})\n'
        "posthog.flush()"
    )


def demo(
    port: int = typer.Option(8000, "--port", envvar="EVENTLENS_PORT"),
    host: str = typer.Option("127.0.0.1", "--host", envvar="EVENTLENS_HOST"),
    data_dir: Path | None = DataDirOption,
    events: str = typer.Option("200k", "--events", help="Events to generate on the first run."),
    seed: int = typer.Option(42, "--seed"),
    days: int = typer.Option(90, "--days"),
) -> None:
    """Create (or reuse) the "Demo" project with realistic events, then serve it."""
    settings = settings_for(data_dir)
    n_events = parse_count(events)
    # The port first: a busy one fails here, before any data is generated or printed.
    sockets = bind(host, port)
    port = bound_port(sockets)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        state, created = ensure_project(settings)
        ensure_login(settings, state)
        load_events(settings, state, n_events, seed, days)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    url = f"http://{host}:{port}"
    # soft_wrap: long tokens and the snippet must stay copy-pasteable on narrow terminals.
    out = partial(console.print, soft_wrap=True)
    out(f"\n[bold]EventLens demo[/bold] at {url}")
    out(f"  project id: {state.project_id} ({DEMO_NAME}, {DEMO_TIMEZONE})")
    out(f"  token:      {state.token}   (public: put it in your SDK)")
    out(
        f"  api key:    {state.api_key}   (secret, saved in {credentials_path(settings)}"
        f"{'' if created else ', reused'})"
    )
    out(f"  login:      {state.login_email} / {state.login_password}   (the dashboard at {url})")
    out("\nSend events from Python:\n")
    out(snippet(url, state.token), markup=False, highlight=False)
    out()
    run_server(replace(settings, host=host, port=port), sockets)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
