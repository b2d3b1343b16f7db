"""`eventlens serve`: the HTTP server (capture + API + dashboard) with its ingest consumer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import uvicorn

from eventlens.cli.common import DataDirOption, settings_for
from eventlens.config import Settings
from eventlens.errors import EventLensError
from eventlens.observability.logging import configure_logging
from eventlens.web.app import create_app


def serve(
    host: str = typer.Option("127.0.0.1", "--host", envvar="EVENTLENS_HOST"),
    port: int = typer.Option(8000, "--port", envvar="EVENTLENS_PORT"),
    data_dir: Path | None = DataDirOption,
    shadow_primary: str | None = typer.Option(
        None,
        "--shadow-primary",
        help="Shadow mode: the engine users get (default: the API's default engine).",
    ),
    shadow_candidate: str | None = typer.Option(
        None, "--shadow-candidate", help="Shadow mode: the engine compared with it (turns it on)."
    ),
    shadow_sample: str | None = typer.Option(
        None, "--shadow-sample", help="Shadow mode: share of queries, 0-1 or 0%-100%."
    ),
) -> None:
    """Run the server until interrupted."""
    from dataclasses import replace

    from eventlens.cli.common import fail
    from eventlens.config import parse_project_rates, parse_rate

    try:
        settings = replace(settings_for(data_dir), host=host, port=port)
        shadow: dict[str, Any] = {}
        if shadow_primary is not None:
            shadow["shadow_primary"] = shadow_primary
        if shadow_candidate is not None:
            shadow["shadow_candidate"] = shadow_candidate
        if shadow_sample is not None:
            shadow["shadow_sample"] = parse_rate(shadow_sample)
        settings = replace(settings, **shadow)
        parse_project_rates(settings.shadow_sample_projects)
        if settings.shadow_candidate:
            from eventlens.query.service import DEFAULT_ENGINE
            from eventlens.shadow.runner import resolve_engine

            resolve_engine(settings.shadow_primary or DEFAULT_ENGINE)
            resolve_engine(settings.shadow_candidate)
    except (ValueError, EventLensError) as exc:
        fail(exc if isinstance(exc, EventLensError) else f"shadow settings: {exc}")
    run_server(settings)


def run_server(settings: Settings) -> None:
    """Serve `settings.host:settings.port` until interrupted (SIGINT/SIGTERM)."""
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep our JSON logging
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
