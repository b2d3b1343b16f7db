"""`eventlens generate`: write seeded, realistic product events to Parquet or JSON-lines."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from eventlens.cli.common import console
from eventlens.errors import InvalidInput
from eventlens.generate import DEFAULT_CHUNK_EVENTS, parse_count, write_file


def parse_end(text: str | None) -> datetime | None:
    """None/'' -> None (the fixed default end); 'now' -> now (UTC); else an ISO 8601 date or
    date-time, read as UTC when it has no offset. Raises InvalidInput."""
    if text is None or not text.strip():
        return None
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(
            f"--end {text!r} is not 'now' or an ISO 8601 date/time (e.g. 2026-01-01)",
            field="end",
        ) from exc
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} events"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def generate_command(
    events: str = typer.Option(..., "--events", help="How many events: 10000, 10k, 1m, 100m."),
    out: Path = typer.Option(..., "--out", help="Output file: .parquet or .jsonl."),
    seed: int = typer.Option(42, "--seed", help="Random seed: same seed, same bytes."),
    days: int = typer.Option(90, "--days", help="Length of the time window in days."),
    end: str | None = typer.Option(
        None, "--end", help="End of the window: 'now' or an ISO date (default 2026-01-01, fixed)."
    ),
    chunk_size: int = typer.Option(
        DEFAULT_CHUNK_EVENTS, "--chunk-size", help="Events per chunk (Parquet row group)."
    ),
    shape: str = typer.Option(
        "product",
        "--shape",
        help="product (the default story) or saas (few heavy accounts, long sessions, binary "
        "uuids; Parquet only; see eventlens/generate/saas.py).",
    ),
) -> None:
    """Generate realistic product events (anonymous visitors who identify, funnels, returns)."""
    n = parse_count(events)
    end_dt = parse_end(end)
    started = time.perf_counter()
    if shape not in ("product", "saas"):
        raise InvalidInput(f"--shape must be product or saas, not {shape!r}", field="shape")
    if shape == "saas":
        from eventlens.generate.saas import write_saas

        written = write_saas(out, n, seed=seed, end=end_dt, days=days)
        console.print(f"wrote {written:,} saas-shape events to {out}")
        return
    with progress_bar() as bar:
        task = bar.add_task(f"generating {out.name}", total=n)
        written = write_file(
            out,
            n,
            seed=seed,
            end=end_dt,
            days=days,
            chunk_size=chunk_size,
            progress=lambda k: bar.advance(task, k),
        )
    elapsed = time.perf_counter() - started
    rate = written / elapsed if elapsed > 0 else float("inf")
    console.print(
        f"wrote {written:,} events to {out} ({out.stat().st_size / 1e6:,.1f} MB) "
        f"in {elapsed:.1f} s ({rate:,.0f} events/s)"
    )


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)
