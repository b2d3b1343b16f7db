"""`eventlens serve`: the HTTP server (capture + API + dashboard) with its ingest consumer."""

from __future__ import annotations

from pathlib import Path

import typer
import uvicorn

from eventlens.cli.common import DataDirOption, settings_for
from eventlens.observability.logging import configure_logging
from eventlens.web.app import create_app


def serve(
    host: str = typer.Option("127.0.0.1", "--host", envvar="EVENTLENS_HOST"),
    port: int = typer.Option(8000, "--port", envvar="EVENTLENS_PORT"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Run the server until interrupted."""
    from dataclasses import replace

    settings = replace(settings_for(data_dir), host=host, port=port)
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,  # keep our JSON logging
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
