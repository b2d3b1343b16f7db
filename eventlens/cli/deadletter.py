"""`eventlens deadletter list|replay`: inspect and replay events that capture rejected.

Replay re-validates each stored payload with the capture parser; the ones that now pass are
appended to the ingest log (like a capture request) and marked replayed, the others stay with
their new reason. The log has one writer: with the server stopped the CLI appends directly;
with it running, `--server URL` sends the re-validated events through its `/batch/` endpoint.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import orjson
import typer

from eventlens.capture.model import CapturedEvent, encode_log_record
from eventlens.capture.replay import revalidate
from eventlens.cli.common import DataDirOption, console, print_json, settings_for
from eventlens.config import Settings
from eventlens.errors import InvalidEvent, Unavailable
from eventlens.projects.store import Project, SqliteMetadataStore
from eventlens.storage import deadletters

deadletter_app = typer.Typer(help="List and replay rejected (dead-lettered) events.")

ProjectOption = typer.Option(None, "--project", help="Project id (default: all projects).")


def _projects(data_dir: Path | None, project_id: int | None) -> tuple[Settings, list[Project]]:
    """The settings and the projects a command acts on (one, or all); raises NotFound when
    `project_id` is unknown."""
    settings = settings_for(data_dir)
    store = SqliteMetadataStore(settings.meta_db)
    try:
        if project_id is not None:
            return settings, [store.get_project(project_id)]
        return settings, store.list_projects()
    finally:
        store.close()


def _iso(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).isoformat()


@deadletter_app.command("list")
def list_cmd(
    project: int | None = ProjectOption,
    include_replayed: bool = typer.Option(False, "--all", help="Include replayed ones."),
    limit: int = typer.Option(100, "--limit", help="At most this many per project."),
    as_json: bool = typer.Option(False, "--json"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """List dead letters, oldest first: id, received time, index in its request, reason."""
    settings, projects = _projects(data_dir, project)
    out = []
    for p in projects:
        if not settings.state_db(p.id).exists():
            continue
        for row in deadletters.list_(settings, p.id, limit, include_replayed):
            out.append(
                {
                    "project": p.id,
                    "id": row.id,
                    "received_at": _iso(row.received_at),
                    "index": row.index,
                    "reason": row.reason,
                    "replayed_at": _iso(row.replayed_at),
                    "payload": row.payload,
                }
            )
    if as_json:
        print_json(out)
        return
    if not out:
        console.print("no dead letters")
    for d in out:
        payload = orjson.dumps(d["payload"]).decode()
        shown = payload if len(payload) <= 120 else payload[:117] + "..."
        console.print(
            f"{d['project']}\t{d['id']}\t{d['received_at']}\t{d['reason']}\t{shown}",
            markup=False,
            highlight=False,
        )


def _wire(e: CapturedEvent) -> dict[str, object]:
    """A re-validated event in PostHog wire form; parsing it again yields the same event."""
    return {
        "uuid": e.uuid,
        "event": e.event,
        "distinct_id": e.distinct_id,
        "timestamp": _iso(e.timestamp),
        "properties": e.properties,
    }


def _post_batch(server: str, body: dict[str, object]) -> None:
    """POST `body` to the server's `/batch/`; raises Unavailable unless it stored every event.
    The standard library's client: the CLI must run with the runtime dependencies alone."""
    request = urllib.request.Request(
        server.rstrip("/") + "/batch/",
        data=orjson.dumps(body),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            status, text = resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise Unavailable(f"could not reach {server}: {reason}") from exc
    try:
        rejected = status == 200 and bool(orjson.loads(text).get("rejected"))
    except (orjson.JSONDecodeError, AttributeError):
        rejected = True
    if status != 200 or rejected:
        raise Unavailable(f"server answered {status}: {text[:300]}")


def _append(
    settings: Settings,
    server: str | None,
    project: Project,
    records: bytes,
    events: list[CapturedEvent],
) -> None:
    if server is not None:
        _post_batch(server, {"api_key": project.token, "batch": [_wire(e) for e in events]})
        return
    from eventlens.ingest.log import IngestLog

    try:
        log = IngestLog(settings.log_dir, fsync=settings.fsync)
    except Unavailable as exc:
        raise Unavailable(
            f"{exc.message}; pass --server http://HOST:PORT to replay through the running server"
        ) from exc
    try:
        log.start()
        log.append_blocking(records)
    finally:
        log.close()


@deadletter_app.command("replay")
def replay_cmd(
    project: int | None = ProjectOption,
    ids: list[int] | None = typer.Option(None, "--id", help="Dead-letter id (repeatable)."),
    server: str | None = typer.Option(
        None, "--server", help="Replay through a running server (e.g. http://127.0.0.1:8000)."
    ),
    as_json: bool = typer.Option(False, "--json"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Re-validate dead letters; append the valid ones to the ingest log, mark them replayed."""
    settings, projects = _projects(data_dir, project)
    wanted = set(ids or [])
    summary: list[dict[str, object]] = []
    lines: list[str] = []
    for p in projects:
        if not settings.state_db(p.id).exists():
            continue
        rows = deadletters.list_(settings, p.id, limit=1_000_000)
        if wanted:
            rows = [r for r in rows if r.id in wanted]
        events: list[CapturedEvent] = []
        passed: list[int] = []
        still: list[dict[str, object]] = []
        for row in rows:
            try:
                events.append(
                    revalidate(
                        row.payload,
                        project_id=p.id,
                        dead_letter_id=row.id,
                        received_at_us=row.received_at,
                        max_event=settings.max_event,
                    )
                )
                passed.append(row.id)
            except InvalidEvent as exc:
                still.append({"id": row.id, "reason": exc.message})
        if events:
            record = encode_log_record(p.id, time.time_ns() // 1000, events, [])
            _append(settings, server, p, record, events)
            deadletters.mark_replayed(settings, p.id, passed)
        summary.append({"project": p.id, "replayed": passed, "still_invalid": still})
        lines.append(f"project {p.id}: replayed {len(passed)}, still invalid {len(still)}")
        lines.extend(f"  {item['id']}: {item['reason']}" for item in still)
    if as_json:
        print_json(summary)
        return
    for line in lines:
        console.print(line, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(deadletter_app, name="deadletter")
