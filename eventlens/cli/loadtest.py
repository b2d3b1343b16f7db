"""`eventlens loadtest --url URL ...`: SDK-shaped capture and dashboard queries against any
server, judged against the SLO thresholds (exit 0 pass, 1 fail); `--profile` records a py-spy
flame graph of the server for the duration (docs/performance.md).

The load runs in a child process (`python -m eventlens.loadtest.load`): Locust patches the
standard library with gevent on import, which this process must not be.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer

from eventlens.cli.common import console, fail, print_json
from eventlens.cli.errors import NO
from eventlens.errors import InvalidInput, Unavailable
from eventlens.loadtest.judge import Verdict, judge
from eventlens.loadtest.thresholds import Thresholds, default, from_file

GRACE_SECONDS = 60.0  # spawn-up, the last requests, the report


def server_pid(url: str) -> int:
    """The PID listening on `url`'s port on this machine (for `--profile` without --pid)."""
    import psutil  # Locust's own dependency (the loadtest extra)

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        for conn in psutil.net_connections(kind="tcp"):
            listening = conn.status == psutil.CONN_LISTEN and conn.laddr
            if listening and conn.laddr.port == port and conn.pid:
                return int(conn.pid)
    except psutil.AccessDenied:
        pass
    raise InvalidInput(
        f"no process of this machine listens on port {port}: give the server's --pid",
        field="pid",
    )


def _installed(module: str) -> bool:
    """Is `module` importable? (Without importing it: Locust would patch this process.)"""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def _start_profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise Unavailable("py-spy is not installed (pip install 'eventlens[loadtest]')")
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, math.ceil(seconds))),
            "--subprocesses",  # the ingest consumer too
            "--nonblocking",  # sample without pausing the server: the load test's numbers hold
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _print(verdict: Verdict, report: dict[str, Any]) -> None:
    console.print(
        f"load test: {report['users']} users for {report['seconds']:.1f} s against {report['url']}"
    )
    for group, stats in verdict.stats.items():
        console.print(
            f"  {group}: {stats['requests']:.0f} requests, {stats['rps']:g}/s, "
            f"p50 {stats['p50_ms']:g} ms, p95 {stats['p95_ms']:g} ms, p99 {stats['p99_ms']:g} ms",
            soft_wrap=True,
        )
    for check in verdict.checks:
        mark = "[green]PASS[/green]" if check.passed else "[red]FAIL[/red]"
        measured = "-" if check.measured is None else f"{check.measured:.3%}"
        console.print(f"  {mark} {check.name}: {measured} — {check.detail}", soft_wrap=True)


def loadtest(
    url: str = typer.Option(..., "--url", help="Base URL of the server under test."),
    token: str = typer.Option(..., "--token", help="Project token the capture requests use."),
    project_id: int = typer.Option(..., "--project-id", help="Project the queries ask about."),
    api_key: str = typer.Option(..., "--api-key", help="API key for the query requests."),
    users: int = typer.Option(10, "--users", min=1, help="Concurrent users (4:1 SDK:dashboard)."),
    spawn_rate: float = typer.Option(10.0, "--spawn-rate", min=0.1, help="Users started per s."),
    seconds: float = typer.Option(20.0, "--seconds", min=1.0, help="How long the load runs."),
    batch_size: int = typer.Option(10, "--batch-size", min=1, help="Events per SDK batch."),
    threshold_file: Path | None = typer.Option(
        None, "--threshold-file", help="JSON object overriding the SLO thresholds' fields."
    ),
    capture_latency_ms: float | None = typer.Option(
        None, "--capture-latency-ms", help="Override the capture ack latency threshold."
    ),
    query_latency_ms: float | None = typer.Option(
        None, "--query-latency-ms", help="Override the query latency threshold."
    ),
    profile: bool = typer.Option(False, "--profile", help="py-spy the server meanwhile."),
    pid: int | None = typer.Option(
        None,
        "--pid",
        help="Server PID for --profile (default: the process listening on the URL's port).",
    ),
    profile_out: Path = typer.Option(
        Path("loadtest-profile.svg"), "--profile-out", help="Where --profile writes its SVG."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Load the server at URL with SDK-shaped capture and dashboard queries; judge the
    result against the SLO thresholds. Exit 0 when every check passes, 1 when one fails."""
    if not _installed("locust"):
        raise Unavailable("the load test needs Locust: pip install 'eventlens[loadtest]'")
    thresholds: Thresholds = default() if threshold_file is None else from_file(threshold_file)
    overrides: dict[str, float] = {}
    if capture_latency_ms is not None:
        overrides["capture_latency_s"] = capture_latency_ms / 1000
    if query_latency_ms is not None:
        overrides["query_latency_s"] = query_latency_ms / 1000
    if overrides:
        thresholds = Thresholds(**{**thresholds.to_dict(), **overrides})
    profiler: subprocess.Popen[bytes] | None = None
    if profile:
        profiler = _start_profiler(pid or server_pid(url), seconds, profile_out)
    with tempfile.TemporaryDirectory(prefix="eventlens-loadtest-") as tmp:
        report_path = Path(tmp) / "report.json"
        args = [sys.executable, "-m", "eventlens.loadtest.load", "--url", url, "--token", token]
        args += ["--project-id", str(project_id), "--api-key", api_key, "--users", str(users)]
        args += ["--spawn-rate", str(spawn_rate), "--seconds", str(seconds)]
        args += ["--batch-size", str(batch_size), "--report", str(report_path)]
        try:
            done = subprocess.run(
                args, capture_output=True, text=True, timeout=seconds + GRACE_SECONDS
            )
        except subprocess.TimeoutExpired:
            raise Unavailable(
                f"the load did not finish within {seconds + GRACE_SECONDS:g} s"
            ) from None
        if done.returncode != 0 or not report_path.exists():
            raise Unavailable(f"the load process failed: {done.stderr.strip()[-2000:]}")
        report = json.loads(report_path.read_text())
    if profiler is not None:
        out, _ = profiler.communicate(timeout=seconds + GRACE_SECONDS)
        if profiler.returncode != 0:
            console.print(f"[yellow]py-spy failed[/yellow]: {out.decode(errors='replace')}")
        else:
            console.print(f"profile: {profile_out}")
    verdict = judge(report, thresholds)
    if as_json:
        print_json({**verdict.to_dict(), "thresholds": thresholds.to_dict()})
    else:
        console.print(done.stdout, markup=False, highlight=False, soft_wrap=True)
        _print(verdict, report)
    if not verdict.passed:
        names = ", ".join(c.name for c in verdict.failures())
        fail(f"the load test missed its SLO thresholds: {names}", code=NO)


def register(app: typer.Typer) -> None:
    app.command("loadtest")(loadtest)
