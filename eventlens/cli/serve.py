"""`eventlens serve`: the HTTP server (capture + API + dashboard) with its ingest consumer."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any

import typer
import uvicorn

from eventlens.cli.common import DataDirOption, settings_for
from eventlens.config import Settings
from eventlens.errors import EventLensError, InvalidInput, Unavailable
from eventlens.observability.logging import configure_logging, get_logger
from eventlens.observability.tracing import TracingConfigError, configure_tracing
from eventlens.storage import format as data_format
from eventlens.web.app import create_app

log = get_logger(__name__)
_BACKLOG = 2048  # uvicorn's default


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
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="Where query sub-tasks run: local (threads) or ray (a Ray cluster; the "
        "'cluster' extra). Default: EVENTLENS_QUERY_EXECUTOR or local.",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="With --executor ray: the cluster to join (HOST:PORT); none starts a local Ray.",
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
        if executor is not None:
            settings = replace(settings, query_executor=executor)
        if ray_address is not None:
            settings = replace(settings, ray_address=ray_address)
        check_executor(settings)
        parse_project_rates(settings.shadow_sample_projects)
        if settings.shadow_candidate:
            from eventlens.query.registry import get_engine
            from eventlens.query.service import DEFAULT_ENGINE

            get_engine(settings.shadow_primary or DEFAULT_ENGINE)
            get_engine(settings.shadow_candidate)
    except (ValueError, EventLensError) as exc:
        fail(exc if isinstance(exc, EventLensError) else f"shadow settings: {exc}")
    run_server(settings)


def check_executor(settings: Settings) -> None:
    """InvalidInput for an unknown executor, a Ray address without the Ray executor, or a
    storage URL that is not s3://BUCKET[/PREFIX] (before anything starts)."""
    from eventlens.query.parallel.executors import EXECUTOR_NAMES
    from eventlens.storage.object_store import check_url

    if settings.query_executor not in EXECUTOR_NAMES:
        raise InvalidInput(
            f"unknown executor {settings.query_executor!r} (available: "
            f"{', '.join(EXECUTOR_NAMES)})",
            field="executor",
        )
    if settings.ray_address and settings.query_executor != "ray":
        raise InvalidInput("--ray-address needs --executor ray", field="ray_address")
    check_url(settings.storage_url)


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for `host:port` (every address `host` resolves to, like uvicorn),
    bound now, so that a busy port fails before anything is started or generated. Port 0
    picks a free port (the same one on every address). Raises Unavailable when the port is
    taken or not ours to bind, InvalidInput when `host` is not an address of this machine."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise InvalidInput(
            f"--host {host!r} does not resolve: {exc.strerror}", field="host"
        ) from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address[:2]) in seen:
                continue
            seen.add((family, address[:2]))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            # Listen at once: two SO_REUSEADDR sockets may bind one port, only one can listen.
            sock.listen(_BACKLOG)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise Unavailable(
                f"port {port} is already in use on {host} (another server is listening on "
                f"{where}); pick another port with --port PORT (or EVENTLENS_PORT)",
                field="port",
            ) from None
        if exc.errno == errno.EACCES:
            raise Unavailable(
                f"not allowed to listen on {where} (ports below 1024 need privileges); "
                "pick another port with --port PORT",
                field="port",
            ) from None
        raise Unavailable(
            f"cannot listen on {where}: {exc.strerror or exc}", field="host"
        ) from None
    return sockets


def bound_port(sockets: list[socket.socket]) -> int:
    """The port `bind` listens on (the one it picked when asked for port 0)."""
    return int(sockets[0].getsockname()[1])


def run_server(settings: Settings, sockets: list[socket.socket] | None = None) -> None:
    """Serve `settings.host:settings.port` (or the already bound `sockets`) until interrupted
    (SIGINT/SIGTERM). The sockets are bound before the app starts, so a busy port raises
    Unavailable without starting the consumer or the warm-up; a start-up that fails later
    raises Unavailable too (its cause is in the log)."""
    configure_logging(settings.log_level)
    try:
        configure_tracing("eventlens")  # from OTEL_*; the consumer process inherits them
    except TracingConfigError as exc:
        raise InvalidInput(str(exc), field=exc.variable) from None
    if sockets is None:
        sockets = bind(settings.host, settings.port)
    try:
        # Before anything opens the directory (and after the port, so a busy port leaves a new
        # directory untouched): a newer format (a rollback) or an older one (not migrated) is
        # refused here, with what to do, instead of being misread.
        data_format.ensure_current(settings.data_dir)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=bound_port(sockets),
        log_config=None,  # keep our JSON logging
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    log.info("server.listening", addresses=[str(s.getsockname()[:2]) for s in sockets])
    try:
        server.run(sockets=sockets)
    except SystemExit as exc:  # uvicorn's way of saying the lifespan start-up failed
        if exc.code not in (None, 0):
            raise Unavailable("the server failed to start (the log above says why)") from None
        raise
    finally:
        for sock in sockets:
            sock.close()
    if not server.started:
        raise Unavailable("the server failed to start (the log above says why)")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
