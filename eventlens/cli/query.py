"""`eventlens query --project ID [--engine NAME] [--json] [--url URL --api-key KEY] FILE.json|-`.

Without `--url` the query runs in this process against the data directory (same QueryService as
the server, so same results and deadline); with `--url` it is POSTed to a server's query API.
FILE holds either the query object (`{"kind": "TrendsQuery", ...}`) or a whole request body
(`{"query": {...}, "engine": ..., "timeout": ...}`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.table import Table

from eventlens import errors
from eventlens.cli.common import DataDirOption, console, fail, print_json, settings_for
from eventlens.errors import (
    AuthenticationError,
    EventLensError,
    ExecutionError,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    QueryTimeout,
    RateLimited,
    Unavailable,
)
from eventlens.observability.logging import configure_logging
from eventlens.projects.store import SqliteMetadataStore

NULL_BREAKDOWN = "$$_posthog_breakdown_null_$$"
OTHER_BREAKDOWN = "$$_posthog_breakdown_other_$$"
_BODY_FIELDS = {"query", "engine", "refresh", "timeout"}


def read_request(source: str) -> dict[str, Any]:
    """The request body from FILE or '-' (stdin); a bare query object is wrapped as {"query"}."""
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read {source}: {exc.strerror}", field="FILE") from exc
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        where = "stdin" if source == "-" else source
        raise InvalidInput(
            f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            field="FILE",
        ) from exc
    if not isinstance(obj, dict):
        raise InvalidInput("the query file must hold a JSON object", field="FILE")
    if "query" not in obj or "kind" in obj:
        return {"query": obj}
    extra = sorted(set(obj) - _BODY_FIELDS)
    if extra:
        raise InvalidInput(
            f"unsupported field {extra[0]!r} in the request body (allowed: "
            f"{', '.join(sorted(_BODY_FIELDS))})",
            field=extra[0],
        )
    return obj


def run_local(
    project_id: int, body: dict[str, Any], engine: str | None, data_dir: Path | None
) -> dict[str, Any]:
    """Run in-process on the data directory (no API key: file access is the authority)."""
    from eventlens.query.actors import is_actors_query, run_actors_query
    from eventlens.query.service import DEFAULT_ENGINE
    from eventlens.shadow.wiring import build_query_service

    settings = settings_for(data_dir)
    # Keep stdout for the result: only warnings, as JSON lines on stderr.
    configure_logging("WARNING")
    store = SqliteMetadataStore(settings.meta_db)
    query = body.get("query")
    if is_actors_query(query):
        try:
            answer = asyncio.run(
                run_actors_query(
                    build_query_service(settings, store),
                    project_id,
                    query,
                    engine=engine or body.get("engine") or DEFAULT_ENGINE,
                    timeout=body.get("timeout"),
                )
            )
        finally:
            store.close()
        actors: dict[str, Any] = orjson.loads(
            orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
        )
        return actors
    try:
        outcome = build_query_service(settings, store).run_sync(
            project_id,
            body.get("query"),
            engine=engine or body.get("engine") or DEFAULT_ENGINE,
            timeout=body.get("timeout"),
            # PostHog's refresh mode as in the API (absent: blocking). A local run is a fresh
            # process, so its in-process cache starts empty: it computes.
            refresh=body.get("refresh"),
        )
    finally:
        store.close()
    # Round-trip through JSON so the local and remote paths print exactly the same thing.
    result: dict[str, Any] = orjson.loads(
        orjson.dumps(outcome.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)
    )
    return result


def run_remote(
    url: str, api_key: str, project_id: int, body: dict[str, Any], engine: str | None
) -> dict[str, Any]:
    """POST to a server's query API; its error answers are raised as EventLensError."""
    if engine:
        body = {**body, "engine": engine}
    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/projects/{project_id}/query",
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        method="POST",
    )
    timeout = float(body.get("timeout") or 300) + 30  # the server's deadline answers first
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result
    except urllib.error.HTTPError as exc:
        try:
            err = json.loads(exc.read())
        except ValueError:
            err = {"detail": exc.reason}
        if not isinstance(err, dict):
            err = {"detail": str(err)}
        cls = remote_error_class(exc.code, err.get("type"))
        raise cls(f"{exc.code} {err.get('detail', exc.reason)}", field=err.get("field")) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise Unavailable(f"cannot reach {url}: {reason}") from None


# A server's error answer names its class ("type"); the status is the fallback.
_BY_STATUS: dict[int, type[EventLensError]] = {
    400: InvalidInput,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    429: RateLimited,
    503: Unavailable,
    504: QueryTimeout,
}


def remote_error_class(status: int, type_name: object) -> type[EventLensError]:
    """The error class a server's answer stands for, so remote and local runs of a command
    exit with the same code: the class named by the body's "type", else by the status."""
    named = getattr(errors, type_name, None) if isinstance(type_name, str) else None
    if isinstance(named, type) and issubclass(named, EventLensError):
        return named
    return _BY_STATUS.get(status, ExecutionError)


# -- tables -------------------------------------------------------------------------------------


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.2f}"
    return f"{int(v):,}" if isinstance(v, int | float) else str(v)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * float(v):.1f}%"


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "-"
    s = float(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.1f}{unit}"
    return f"{s:.1f}s"


def _breakdown(v: Any) -> str:
    return {NULL_BREAKDOWN: "(none)", OTHER_BREAKDOWN: "(other)"}.get(str(v), str(v))


def _series_name(s: dict[str, Any]) -> str:
    if "status" in s:  # lifecycle: one event, four statuses
        return str(s["status"])
    name = str(s.get("label", "?"))
    if s.get("math") not in (None, "total"):
        name += f" ({s['math']})"
    return f"{name} / {_breakdown(s['breakdown_value'])}" if "breakdown_value" in s else name


def series_table(series: list[dict[str, Any]], title: str, row_header: str) -> Table:
    """Buckets down, series across (transposed when there are more series than buckets)."""
    labels = [str(x) for x in (series[0].get("labels") or series[0].get("days") or [])]
    names = [_series_name(s) for s in series]
    table = Table(title=title)
    if len(series) > max(6, len(labels)):
        table.add_column("series")
        for label in labels:
            table.add_column(label, justify="right")
        table.add_column("total", justify="right", style="bold")
        for name, s in zip(names, series, strict=True):
            table.add_row(name, *map(_num, s.get("data", [])), _num(s.get("count")))
        return table
    table.add_column(row_header)
    for name in names:
        table.add_column(name, justify="right")
    for i, label in enumerate(labels):
        table.add_row(label, *(_num(s["data"][i]) for s in series))
    table.add_section()
    table.add_row("total", *(_num(s.get("count")) for s in series), style="bold")
    return table


def time_to_convert_table(result: dict[str, Any]) -> Table:
    """A funnel's time_to_convert view: one row per bin (its start) and persons."""
    table = Table(
        title=f"Time to convert (average {_duration(result.get('average_conversion_time'))})"
    )
    table.add_column("from")
    table.add_column("persons", justify="right")
    for start, persons in result.get("bins") or []:
        table.add_row(_duration(start), _num(persons))
    return table


def funnel_trends_table(row: dict[str, Any]) -> Table:
    """A funnel's trends view: per entry interval, entered, converted and the rate (%)."""
    table = Table(title="Funnel conversion by entry interval")
    for col in ("interval", "entered", "converted", "rate %"):
        table.add_column(col, justify="left" if col == "interval" else "right")
    entered = row.get("reached_from_step_count") or []
    converted = row.get("reached_to_step_count") or []
    for i, label in enumerate(row.get("labels") or row.get("days") or []):
        table.add_row(
            str(label),
            _num(entered[i] if i < len(entered) else None),
            _num(converted[i] if i < len(converted) else None),
            _num(row["data"][i]),
        )
    return table


def funnel_table(results: list[Any]) -> Table:
    groups = results if results and isinstance(results[0], list) else [results]
    with_breakdown = any("breakdown_value" in step for g in groups for step in g)
    table = Table(title="Funnel")
    if with_breakdown:
        table.add_column("breakdown")
    for col in ("step", "event", "persons", "from first", "from previous", "avg time", "median"):
        table.add_column(col, justify="left" if col in ("step", "event") else "right")
    for group in groups:
        for step in group:
            row = [
                str(step.get("order", 0) + 1),
                str(step.get("custom_name") or step.get("name")),
                _num(step.get("count")),
                _pct(step.get("conversion_from_first")),
                _pct(step.get("conversion_from_previous")),
                _duration(step.get("average_conversion_time")),
                _duration(step.get("median_conversion_time")),
            ]
            if with_breakdown:
                row.insert(0, _breakdown(step.get("breakdown_value")))
            table.add_row(*row)
        if with_breakdown:
            table.add_section()
    return table


def retention_table(results: list[dict[str, Any]]) -> Table:
    width = max((len(c.get("values", [])) for c in results), default=0)
    unit = str(results[0].get("label", "Day 0")).split(" ")[0] if results else "Day"
    table = Table(title="Retention (persons, % of cohort)")
    table.add_column("cohort")
    for k in range(width):
        table.add_column(f"{unit} {k}", justify="right")
    for cohort in results:
        values = [v.get("count", 0) for v in cohort.get("values", [])]
        size = values[0] if values else 0
        cells = [_num(values[0])] if values else []
        cells += [f"{_num(v)} ({100 * v / size:.0f}%)" if size else _num(v) for v in values[1:]]
        table.add_row(_cohort_date(cohort.get("date"), unit), *cells)
    return table


def paths_table(results: list[dict[str, Any]]) -> Table:
    """One row per edge, heaviest first (the answer's order)."""
    table = Table(title="Paths (unique persons per transition)")
    for col in ("from", "to", "persons", "avg time", "drop-offs at to"):
        table.add_column(col, justify="left" if col in ("from", "to") else "right")
    for edge in results:
        ms = edge.get("average_conversion_time")
        table.add_row(
            str(edge.get("source")),
            str(edge.get("target")),
            _num(edge.get("value")),
            _duration(None if ms is None else float(ms) / 1000),
            _num(edge.get("target_dropoffs")),
        )
    return table


def _cohort_date(date: Any, unit: str) -> str:
    """A cohort's ISO date-time as its local date (local date-time for hour periods)."""
    text = str(date)
    return text if unit == "Hour" else text[:10]


def actors_table(response: dict[str, Any]) -> Table:
    """An ActorsQuery page: one row per person (id, distinct ids, email / name, created)."""
    offset = int(response.get("offset") or 0)
    results = response.get("results") or []
    shown = f"{offset + 1}-{offset + len(results)}" if results else "none"
    title = f"Persons {shown} of {response.get('total', 0)}"
    if response.get("insight_value") is not None:
        title += f" (the insight shows {_num(response['insight_value'])})"
    table = Table(title=title)
    for column in ("person id", "distinct ids", "email / name", "created"):
        table.add_column(column)
    for (person,) in results:
        dids = list(person.get("distinct_ids") or [])
        props = person.get("properties") or {}
        name = props.get("email") or props.get("name") or ""
        table.add_row(
            str(person.get("id")),
            ", ".join(dids[:3]) + (f" (+{len(dids) - 3})" if len(dids) > 3 else ""),
            str(name),
            str(person.get("created_at") or "")[:19],
        )
    return table


def render(response: dict[str, Any], kind: str | None) -> None:
    """Print `response` (the API's JSON) as Rich tables, by query kind."""
    results = response.get("results")
    kind = kind or response.get("kind")
    if kind == "ActorsQuery":
        console.print(actors_table(response))
        if response.get("hasMore"):
            console.print(
                f"[dim]more: offset {int(response.get('offset') or 0) + len(results or [])}[/dim]"
            )
    elif not results:
        console.print("[dim]no results[/dim]")
    elif kind == "FunnelsQuery" and isinstance(results, dict):
        console.print(time_to_convert_table(results))
    elif kind == "FunnelsQuery" and isinstance(results[0], dict) and "data" in results[0]:
        console.print(funnel_trends_table(results[0]))
    elif kind == "FunnelsQuery":
        console.print(funnel_table(results))
    elif kind == "RetentionQuery":
        console.print(retention_table(results))
    elif kind == "StickinessQuery":
        console.print(series_table(results, "Stickiness (persons active in exactly n)", "n"))
    elif kind == "LifecycleQuery":
        console.print(series_table(results, "Lifecycle (persons)", "period"))
    elif kind == "TrendsQuery":
        console.print(series_table(results, "Trends", "period"))
    elif kind == "PathsQuery":
        console.print(paths_table(results))
    else:
        print_json(results)
    timings = response.get("timings") or {}
    console.print(
        f"[dim]data version {response.get('data_version')} · engine {response.get('engine')} · "
        f"{timings.get('total_ms', 0):.1f} ms[/dim]"
    )


def query(
    source: str = typer.Argument(..., metavar="FILE.json|-", help="Query JSON file, or - (stdin)."),
    project: int = typer.Option(..., "--project", help="Project id."),
    engine: str | None = typer.Option(None, "--engine", help="Engine (default: reference)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full JSON response."),
    url: str | None = typer.Option(
        None, "--url", envvar="EVENTLENS_URL", help="Query a server instead of the data dir."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="EVENTLENS_API_KEY", help="Personal API key (with --url)."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Run an insight query and print it as a table (or JSON with --json)."""
    body = read_request(source)
    if url:
        if not api_key:
            fail("--url needs --api-key (or EVENTLENS_API_KEY)")
        response = run_remote(url, api_key, project, body, engine)
    else:
        response = run_local(project, body, engine, data_dir)
    if as_json:
        print_json(response)
    else:
        render(response, None)


def register(app: typer.Typer) -> None:
    app.command("query")(query)
