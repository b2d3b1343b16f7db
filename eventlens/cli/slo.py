"""`eventlens slo render --out DIR`: the Prometheus rules and the Grafana dashboard, generated
from the SLO declaration (eventlens/observability/slos.yaml; docs/slos.md).

The copies in deploy/ are this command's output with the defaults (a test keeps them current);
`--time-scale N` divides every window by N, which only tests want.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from eventlens.cli.common import console
from eventlens.errors import InvalidInput
from eventlens.observability import dashboard, rules, slo

RULES_FILE = "eventlens-rules.yaml"
DASHBOARD_FILE = "eventlens-dashboard.json"

slo_app = typer.Typer(help="Service level objectives: render their rules and dashboard.")


def render_files(time_scale: float = 1.0, runbook_base_url: str | None = None) -> dict[str, str]:
    """File name -> content of everything `slo render` writes."""
    slos = slo.load()
    board = orjson.dumps(dashboard.dashboard(slos), option=orjson.OPT_INDENT_2).decode() + "\n"
    return {
        RULES_FILE: rules.render(slos, time_scale=time_scale, runbook_base_url=runbook_base_url),
        DASHBOARD_FILE: board,
    }


@slo_app.command("render")
def render(
    out: Path = typer.Option(..., "--out", help="Directory to write the files into."),
    time_scale: float = typer.Option(
        1.0, "--time-scale", help="Divide every window and duration by this (tests only)."
    ),
    runbook_base_url: str | None = typer.Option(
        None, "--runbook-base-url", help="Base of the alerts' runbook_url (default: slos.yaml's)."
    ),
) -> None:
    """Write the Prometheus rule file and the Grafana dashboard for the declared SLOs."""
    if time_scale < 1:
        raise InvalidInput(f"--time-scale {time_scale:g} must be at least 1", field="--time-scale")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_files(time_scale, runbook_base_url).items():
        (out / name).write_text(text)
        console.print(f"wrote {out / name}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(slo_app, name="slo")
