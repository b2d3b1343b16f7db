"""`eventlens shadow ...`: the shadow-mode report, replay, and known-difference rules.

    eventlens shadow report [--since 7d] [--json]
    eventlens shadow replay ID | --log FILE [--primary NAME --candidate NAME] [--record]
    eventlens shadow rule add --reason TEXT [--kind K] [--shape JSON] [--path GLOB]
    eventlens shadow rule list | eventlens shadow rule remove ID

They read `<data_dir>/shadow.db` directly (file access is the authority, like `eventlens
status`); the server's `GET /api/shadow/report` is the same report scoped to an API key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from eventlens.cli import errors as exits
from eventlens.cli.common import DataDirOption, console, fail, print_json, settings_for
from eventlens.config import Settings
from eventlens.errors import InvalidInput
from eventlens.observability.logging import configure_logging
from eventlens.shadow.report import Policy, build_report, parse_since
from eventlens.shadow.store import ShadowStore

shadow_app = typer.Typer(
    help="Shadow mode: compare a candidate engine with the primary.", no_args_is_help=True
)
rule_app = typer.Typer(help="Known-difference rules (explain a class of mismatches).")
shadow_app.add_typer(rule_app, name="rule")


def _store(settings: Settings) -> ShadowStore:
    return ShadowStore(
        settings.data_dir / "shadow.db", max_result_bytes=settings.shadow_max_result_bytes
    )


@shadow_app.command("report")
def report(
    since: str = typer.Option("7d", "--since", help="Window: 90s, 30m, 12h, 7d, 2w; 'all'."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    primary: str | None = typer.Option(None, "--primary", help="Engine pair (default: latest)."),
    candidate: str | None = typer.Option(None, "--candidate"),
    project: list[int] = typer.Option([], "--project", help="Only these project ids."),
    min_days: float | None = typer.Option(None, "--min-days", help="Policy: days covered."),
    min_queries: int | None = typer.Option(None, "--min-queries", help="Policy: compared."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Match rate, outcomes, mismatches by kind and location, latency, cut-over verdict.
    Exit status 0 when the verdict is "ready", 1 when "not ready"."""
    settings = settings_for(data_dir)
    since_s = None if since == "all" else parse_since(since)
    store = _store(settings)
    try:
        out = build_report(
            store,
            since_s=since_s,
            policy=Policy(
                min_days=settings.shadow_min_days if min_days is None else min_days,
                min_queries=settings.shadow_min_queries if min_queries is None else min_queries,
            ),
            projects=set(project) or None,
            primary=primary,
            candidate=candidate,
        )
    finally:
        store.close()
    if as_json:
        print_json(out)
    else:
        _print_report(out)
    raise typer.Exit(exits.OK if out["verdict"] == "ready" else exits.NO)


def _print_report(r: dict[str, Any]) -> None:
    if r["primary"] is None:
        console.print(
            "no shadow comparisons in this window (is shadow mode on? see shadow-mode.md)"
        )
        return
    rate = "-" if r["match_rate"] is None else f"{100 * r['match_rate']:.4f}%"
    console.print(
        f"[bold]{r['primary']} (primary) vs {r['candidate']} (candidate)[/bold]: "
        f"{r['compared']} compared over {r['window']['days']:.1f} days, match rate {rate}"
    )
    t = Table("outcome", "queries")
    for k, v in r["outcomes"].items():
        t.add_row(k, str(v))
    console.print(t)
    m = r["mismatches"]
    console.print(
        f"mismatches: {m['total']} ({m['explained']} explained, {m['unexplained']} unexplained)"
    )
    for title, group in (("kind", m["by_kind"]), ("location", m["by_location"])):
        if group:
            t = Table(f"unexplained by {title}", "records")
            for k, v in group.items():
                t.add_row(k, str(v))
            console.print(t)
    lat = Table("latency (engine ms)", "engine", "p50", "p99")
    for role, v in r["latency_ms"].items():
        lat.add_row(role, str(v["engine"]), str(v["p50"]), str(v["p99"]))
    console.print(lat)
    if r["records"]:
        t = Table("id", "kind", "outcome", "first diff", "explained")
        for d in r["records"][-20:]:
            first = d["first_diff"]
            where = (
                f"{first['path']}: {first['expected']!r} vs {first['got']!r}"
                if first
                else (d["error"] or "")[:80]
            )
            t.add_row(str(d["id"]), d["kind"], d["outcome"], where, d["reason"] or "")
        console.print(t)
    colour = "green" if r["verdict"] == "ready" else "red"
    console.print(f"verdict: [{colour}]{r['verdict']}[/{colour}]")
    for reason in r["reasons"]:
        console.print(f"  - {reason}")
    for warning in r["warnings"]:
        console.print(f"  [yellow]warning:[/yellow] {warning}")


@shadow_app.command("replay")
def replay(
    record_id: int | None = typer.Argument(None, help="A discrepancy record id (from report)."),
    log: Path | None = typer.Option(None, "--log", help="Replay a query log (JSON lines)."),
    primary: str | None = typer.Option(
        None, "--primary", help="Default: the record's / logged engine (or shadow_primary)."
    ),
    candidate: str | None = typer.Option(None, "--candidate"),
    record: bool = typer.Option(False, "--record", help="--log: store results in shadow.db."),
    limit: int | None = typer.Option(None, "--limit", help="--log: at most N queries."),
    as_json: bool = typer.Option(False, "--json"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Re-run one discrepancy on its data version and print the diff, or replay a query log
    against both engines. Exit status 1 if anything did not match."""
    from eventlens.shadow.replay import replay_log, replay_record

    configure_logging("WARNING")
    settings = settings_for(data_dir)
    if (record_id is None) == (log is None):
        fail("give either a record ID or --log FILE")
    store = _store(settings)
    try:
        if record_id is not None:
            rec, result = replay_record(
                settings, store, record_id, primary=primary, candidate=candidate
            )
            out: dict[str, Any] = {
                "id": rec.id,
                "recorded_outcome": rec.outcome,
                "query": rec.query,
                **result.to_dict(),
            }
            clean = result.outcome == "match"
        else:
            assert log is not None
            out = replay_log(
                settings,
                log,
                primary=primary or settings.shadow_primary or None,
                candidate=candidate or settings.shadow_candidate or _missing_candidate(),
                store=store if record else None,
                limit=limit,
            )
            clean = not out["problems"]
    finally:
        store.close()
    if as_json:
        print_json(out)
    elif record_id is not None:
        console.print(
            f"record {out['id']} (recorded {out['recorded_outcome']}) on data version "
            f"{out['data_version']}: now [bold]{out['outcome']}[/bold]"
        )
        for d in out["diff"]:
            console.print(f"  {d['path']}: expected {d['expected']!r}, got {d['got']!r}")
        if out["error"]:
            console.print(f"  error: {out['error']}")
    else:
        console.print(f"replayed {out['replayed']} queries: {out['outcomes']}")
        for p in out["problems"][:50]:
            first = (p.get("diff") or [None])[0]
            where = f"{first['path']}: {first['expected']!r} vs {first['got']!r}" if first else ""
            console.print(f"  line {p['line']}: {p['outcome']} {where} {p.get('error') or ''}")
    raise typer.Exit(exits.OK if clean else exits.NO)


def _missing_candidate() -> str:
    fail("name the candidate engine: --candidate NAME (or EVENTLENS_SHADOW_CANDIDATE)")


@rule_app.command("add")
def rule_add(
    reason: str = typer.Option(..., "--reason", help="Why this difference is acceptable."),
    kind: str | None = typer.Option(None, "--kind", help="e.g. FunnelsQuery (default: any)."),
    shape: str = typer.Option("{}", "--shape", help="JSON the query must contain."),
    path: str | None = typer.Option(None, "--path", help="Glob every diff path must match."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Explain a class of mismatches (by query shape and diff location) with a reason."""
    store = _store(settings_for(data_dir))
    try:
        try:
            parsed = json.loads(shape)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"--shape is not JSON: {exc.msg}", field="shape") from None
        rule_id = store.add_rule(reason=reason, kind=kind, shape=parsed, path_glob=path)
    finally:
        store.close()
    console.print(f"rule {rule_id} added")


@rule_app.command("list")
def rule_list(
    as_json: bool = typer.Option(False, "--json"), data_dir: Path | None = DataDirOption
) -> None:
    """The known-difference rules."""
    store = _store(settings_for(data_dir))
    rules = store.rules()
    store.close()
    if as_json:
        print_json(
            [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "shape": r.shape,
                    "path": r.path_glob,
                    "reason": r.reason,
                }
                for r in rules
            ]
        )
        return
    t = Table("id", "kind", "shape", "path", "reason")
    for r in rules:
        t.add_row(str(r.id), r.kind or "*", json.dumps(r.shape), r.path_glob or "*", r.reason)
    console.print(t)


@rule_app.command("remove")
def rule_remove(rule_id: int, data_dir: Path | None = DataDirOption) -> None:
    """Delete a known-difference rule."""
    store = _store(settings_for(data_dir))
    try:
        store.remove_rule(rule_id)
    finally:
        store.close()
    console.print(f"rule {rule_id} removed")


@shadow_app.command("bench")
def bench(
    events: int = typer.Option(20_000, "--events", help="Generated events to query."),
    rounds: int = typer.Option(30, "--rounds", help="Passes over the 4-query mix."),
    candidate: str = typer.Option("reference", "--candidate"),
    primary: str = typer.Option("reference", "--primary"),
    interval_ms: float = typer.Option(0.0, "--interval-ms", help="Pace (0 = back to back)."),
    workers: int = typer.Option(1, "--workers", help="shadow_workers."),
) -> None:
    """Measure the primary's latency with shadow mode off and at 100% sampling (prints JSON)."""
    from eventlens.shadow.bench import run_bench

    configure_logging("WARNING")
    print_json(
        run_bench(
            events=events,
            rounds=rounds,
            candidate=candidate,
            primary=primary,
            interval_ms=interval_ms,
            workers=workers,
        )
    )


def register(app: typer.Typer) -> None:
    app.add_typer(shadow_app, name="shadow")
