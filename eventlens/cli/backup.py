"""`eventlens backup`, `eventlens restore` and `eventlens migrate`: the data directory's
safety net and its explicit format upgrades (docs/operations.md, "Upgrade and rollback")."""

from __future__ import annotations

from pathlib import Path

import typer

from eventlens.cli.common import DataDirOption, console, print_json, settings_for
from eventlens.ingest import backup as backups
from eventlens.storage import format as data_format


def backup_cmd(
    out: Path = typer.Option(..., "--out", help="New (or empty) directory for the backup."),
    data_dir: Path | None = DataDirOption,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Copy the data directory consistently, while the server runs (the consumer pauses)."""
    report = backups.backup(settings_for(data_dir), out)
    if as_json:
        print_json(report.to_dict())
        return
    console.print(
        f"backed up {len(report.projects)} projects and {report.log_bytes} log bytes to "
        f"{report.path} in {report.seconds:.1f} s (log replays from offset {report.checkpoint})",
        highlight=False,
    )


def restore_cmd(
    source: Path = typer.Option(..., "--from", help="A directory written by eventlens backup."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Copy a backup into a new data directory; start a server on it to replay its log."""
    settings = settings_for(data_dir)
    manifest = backups.restore(source, settings.data_dir)
    console.print(
        f"restored {source} (taken {manifest.get('created_at', 0):.0f}, "
        f"{len(manifest.get('projects', []))} projects) into {settings.data_dir}",
        highlight=False,
    )


def migrate_cmd(
    data_dir: Path | None = DataDirOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say which steps would run."),
) -> None:
    """Move the data directory's format to this release's (take a backup first)."""
    settings = settings_for(data_dir)
    steps = data_format.migrate(settings.data_dir, dry_run=dry_run)
    if not steps:
        console.print(
            f"data format {data_format.FORMAT_VERSION} is current; nothing to do", highlight=False
        )
        return
    verb = "would migrate" if dry_run else "migrated"
    console.print(f"{verb} from format {steps[0]} to {data_format.FORMAT_VERSION}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)
    app.command("migrate")(migrate_cmd)
