"""Capture throughput and ack latency against a real server, durable vs non-durable.

For each fsync mode (on = durable, off = `EVENTLENS_FSYNC=0`) a fresh `eventlens serve`
subprocess is started on a loopback port over a temporary data directory with one project. For
each batch size, `clients` separate client processes (so they do not share the server's GIL or
each other's) send posthog-python-shaped `/batch/` bodies over keep-alive HTTP/1.1 connections,
one request at a time each (closed loop), for `warmup + seconds`. Only requests completed inside
the measured window count toward events/s and latency. Afterwards the bench waits until the
event table holds every acknowledged event (it must never hold fewer).

Events are realistic (from the generator), each with a fresh valid uuid so that none is
deduplicated away; building a body costs the client about half a microsecond per event.
"""

from __future__ import annotations

import functools
import http.client
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from eventlens.config import Settings
from eventlens.projects.store import SqliteMetadataStore

TEMPLATE_EVENTS = 4_000


@dataclass(frozen=True)
class ClientJob:
    url_host: str
    port: int
    token: str
    batch: int
    client: int
    run_tag: int  # makes uuids unique across runs and clients
    start_at: float  # wall clock, shared by all clients
    warmup: float
    seconds: float


@dataclass
class ClientResult:
    acked_total: int = 0  # events acknowledged with 200 over the whole run (warm-up included)
    acked: int = 0  # events acknowledged inside the measured window
    requests: int = 0  # requests completed inside the measured window
    errors: int = 0  # non-200 answers or transport errors, whole run
    latencies: bytes = b""  # float64 seconds of measured requests (array('d'))
    cpu_s: float = 0.0  # this client's own CPU seconds while sending


@dataclass
class RunResult:
    fsync: bool
    batch: int
    clients: int
    seconds: float
    events_per_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    acked_total: int
    server_cpu_s: float  # CPU seconds of the server process (HTTP + log writer) in the run
    consumer_cpu_s: float  # CPU seconds of the ingest consumer process in the run
    client_cpu_s: float  # CPU seconds of all client processes (they share the 2 cores too)
    wall_s: float  # wall seconds of the whole run (start, warm-up, measured window)
    events_per_cpu_s: float  # acknowledged events per server + consumer CPU second
    load_1m: float  # the machine's 1-minute load average when the run started (contention)


@dataclass
class ServerResult:
    fsync: bool
    runs: list[RunResult] = field(default_factory=list)
    acked_total: int = 0
    stored: int = 0  # events in the table when the check ended
    verify_seconds: float = 0.0  # acknowledged -> all in the table
    verified: bool = False


@functools.cache
def _templates(n: int) -> list[tuple[bytes, bytes]]:
    """(head, tail) byte pieces per event: head + timestamp + mid + uuid + tail is one event."""
    from eventlens.generate import generate

    batch = next(generate(n, seed=1234, chunk_size=n))
    out = []
    for event, distinct_id, props in zip(
        batch.column("event").to_pylist(),
        batch.column("distinct_id").to_pylist(),
        batch.column("properties").to_pylist(),
        strict=True,
    ):
        head = orjson.dumps({"event": event, "distinct_id": distinct_id})[:-1]
        head += b',"properties":' + props.encode() + b',"timestamp":"'
        out.append((head, b'","type":"capture","library":"eventlens-bench"}'))
    return out


def uuid_prefix(run_tag: int, client: int) -> bytes:
    """The first 24 characters of this client's uuids (a valid v7 layout); 12 hex digits of
    a counter complete each one."""
    return f"{run_tag & 0xFFFFFFFF:08x}-{client & 0xFFFF:04x}-7000-8000-".encode()


def build_body(
    templates: list[tuple[bytes, bytes]], token: bytes, prefix: bytes, counter: int, batch: int
) -> bytes:
    """A posthog-python `/batch/` body of `batch` events (uuids prefix + counter, counter+1,
    ...), stamped now, as bytes. Cheap: only byte joins, no JSON encoding."""
    stamp = datetime.now(UTC).isoformat().encode()
    parts = [b'{"api_key":"', token, b'","batch":[']
    for i in range(counter, counter + batch):
        head, tail = templates[i % len(templates)]
        parts += (head, stamp, b'","uuid":"', prefix, b"%012x" % i, tail, b",")
    parts[-1] = b'],"sent_at":"' + stamp + b'"}'  # replaces the last event's comma
    return b"".join(parts)


def run_client(job: ClientJob) -> ClientResult:
    """One client process: closed-loop POSTs until the window ends. Never raises for HTTP
    problems (they are counted as errors)."""
    templates = _templates(TEMPLATE_EVENTS)
    prefix = uuid_prefix(job.run_tag, job.client)
    token = job.token.encode()
    headers = {"Content-Type": "application/json", "User-Agent": "eventlens-bench"}
    res = ClientResult()
    lat = array("d")
    counter = 0
    conn = http.client.HTTPConnection(job.url_host, job.port, timeout=30)
    # One window in wall-clock time shared by all clients, so that their counts add up to the
    # throughput of the same seconds (a client that starts late just contributes less).
    measure_from = job.start_at + job.warmup
    stop_at = measure_from + job.seconds
    time.sleep(max(0.0, job.start_at - time.time()))
    cpu0 = time.process_time()
    while time.time() < stop_at:
        body = build_body(templates, token, prefix, counter, job.batch)
        counter += job.batch
        w0, t0 = time.time(), time.perf_counter()
        try:
            conn.request("POST", "/batch/", body, headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(job.url_host, job.port, timeout=30)
        t1 = time.perf_counter()
        if not ok:
            res.errors += 1
            continue
        res.acked_total += job.batch
        if w0 >= measure_from and w0 + (t1 - t0) <= stop_at:
            res.acked += job.batch
            res.requests += 1
            lat.append(t1 - t0)
    conn.close()
    res.cpu_s = time.process_time() - cpu0
    res.latencies = lat.tobytes()
    return res


def warm_client(_: int) -> int:
    """Pool warm-up: import and build the templates in a worker before any timed run. The
    sleep keeps this worker busy so that every worker gets one of these tasks."""
    _templates(TEMPLATE_EVENTS)
    time.sleep(0.5)
    return os.getpid()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (Linux); 0.0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


class BenchServer:
    """`eventlens serve` in a subprocess over its own temporary data directory."""

    def __init__(self, fsync: bool, root: Path) -> None:
        self.fsync = fsync
        self.data_dir = root / ("durable" if fsync else "non-durable")
        self.settings = Settings().with_data_dir(self.data_dir)
        store = SqliteMetadataStore(self.settings.meta_db)
        try:
            created = store.create_project("bench")
        finally:
            store.close()
        self.project_id, self.token = created.project.id, created.project.token
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, "EVENTLENS_FSYNC": "1" if self.fsync else "0"}
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "eventlens", "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir)],
            stdout=subprocess.DEVNULL, stderr=log, env=env, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early, see {self.data_dir / 'server.log'}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/_health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start, see {self.data_dir / 'server.log'}")

    def cpu_seconds(self) -> tuple[float, float]:
        """(server process, its children: the ingest consumer) CPU seconds so far."""
        if self.proc is None:
            return 0.0, 0.0
        return _cpu_seconds(self.proc.pid), sum(_cpu_seconds(c) for c in _children(self.proc.pid))

    def stored_events(self) -> int:
        from eventlens.storage import tables

        return sum(f.rows for f in tables.snapshot(self.settings, self.project_id).files)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if len(values) else float("nan")


def _one_run(
    server: BenchServer, pool: ProcessPoolExecutor, batch: int, clients: int, seconds: float,
    warmup: float, run_tag: int,
) -> RunResult:  # fmt: skip
    start_at = time.time() + 1.0
    jobs = [
        ClientJob("127.0.0.1", server.port, server.token, batch, c, run_tag, start_at, warmup,
                  seconds)
        for c in range(clients)
    ]  # fmt: skip
    load = os.getloadavg()[0]
    (srv0, con0), wall0 = server.cpu_seconds(), time.monotonic()
    results = list(pool.map(run_client, jobs))
    (srv1, con1), wall = server.cpu_seconds(), time.monotonic() - wall0
    acked_total = sum(r.acked_total for r in results)
    lat = np.concatenate([np.frombuffer(r.latencies, dtype=np.float64) for r in results])
    acked = sum(r.acked for r in results)
    return RunResult(
        fsync=server.fsync,
        batch=batch,
        clients=clients,
        seconds=seconds,
        events_per_s=acked / seconds,
        requests_per_s=sum(r.requests for r in results) / seconds,
        p50_ms=_percentile(lat, 50),
        p99_ms=_percentile(lat, 99),
        max_ms=float(lat.max()) * 1000 if len(lat) else float("nan"),
        errors=sum(r.errors for r in results),
        acked_total=acked_total,
        server_cpu_s=srv1 - srv0,
        consumer_cpu_s=con1 - con0,
        client_cpu_s=sum(r.cpu_s for r in results),
        wall_s=wall,
        events_per_cpu_s=acked_total / max(1e-9, srv1 - srv0 + con1 - con0),
        load_1m=load,
    )


def _say_run(say: Callable[[str], None], run: RunResult) -> None:
    say(
        f"fsync={'on' if run.fsync else 'off'} batch={run.batch}: "
        f"{run.events_per_s:,.0f} events/s, p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, "
        f"errors {run.errors}, {run.events_per_cpu_s:,.0f} events per server CPU-s, "
        f"load {run.load_1m:.1f}"
    )


def _verify(server: BenchServer, result: ServerResult, timeout: float) -> None:
    """Wait until the table holds every acknowledged event (or `timeout` passes)."""
    t0 = time.monotonic()
    while True:
        result.stored = server.stored_events()
        if result.stored >= result.acked_total or time.monotonic() - t0 > timeout:
            break
        time.sleep(0.2)
    result.verify_seconds = time.monotonic() - t0
    result.verified = result.stored >= result.acked_total


def run_capture_bench(
    seconds: float = 10.0,
    clients: int = 4,
    batches: tuple[int, ...] = (100, 1),
    fsync_modes: tuple[bool, ...] = (True, False),
    warmup: float = 2.0,
    rounds: int = 1,
    verify_timeout: float = 120.0,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark; returns a JSON-able report
    {"machine", "params", "servers": [ServerResult...], "summary": [...], "ratios": {...}}.

    One server per fsync mode, all started up front; each round runs every (mode, batch) in
    turn, so that the modes share the machine's changing load alike. `summary` holds the median
    over rounds per (mode, batch); `ratios[batch]` = median durable events/s / median
    non-durable events/s.
    """
    root = Path(tempfile.mkdtemp(prefix="eventlens-bench-capture-"))
    results = {fsync: ServerResult(fsync=fsync) for fsync in fsync_modes}
    servers: dict[bool, BenchServer] = {}
    run_tag = secrets.randbits(28)
    ctx = get_context("spawn")  # clients must not inherit the parent's threads or locks
    try:
        for fsync in fsync_modes:
            servers[fsync] = BenchServer(fsync, root)
            servers[fsync].start()
        with ProcessPoolExecutor(max_workers=clients, mp_context=ctx) as pool:
            list(pool.map(warm_client, range(clients)))
            for _ in range(rounds):
                for fsync in fsync_modes:
                    for batch in batches:
                        # Each consumer first catches up with earlier runs, so no backlog of
                        # another run (or the other server) competes for the 2 cores.
                        for other in fsync_modes:
                            _verify(servers[other], results[other], verify_timeout)
                        run_tag += 1
                        run = _one_run(
                            servers[fsync], pool, batch, clients, seconds, warmup, run_tag
                        )
                        results[fsync].runs.append(run)
                        results[fsync].acked_total += run.acked_total
                        _say_run(say, run)
        for fsync in fsync_modes:
            result = results[fsync]
            _verify(servers[fsync], result, verify_timeout)
            say(
                f"fsync={'on' if fsync else 'off'}: table holds {result.stored:,} of "
                f"{result.acked_total:,} acknowledged events "
                f"({'OK' if result.verified else 'MISSING'}) after {result.verify_seconds:.1f} s"
            )
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    all_runs = [r for res in results.values() for r in res.runs]
    return {
        "machine": machine_info(),
        "params": {"seconds": seconds, "clients": clients, "warmup": warmup, "rounds": rounds},
        "servers": [asdict(res) for res in results.values()],
        "summary": summary(all_runs),
        "ratios": ratios(all_runs),
    }


def summary(runs: list[RunResult]) -> list[dict[str, Any]]:
    """Median over rounds of each (fsync, batch)."""
    keys = sorted({(r.fsync, r.batch) for r in runs}, key=lambda k: (not k[0], -k[1]))
    out = []
    for fsync, batch in keys:
        same = [r for r in runs if (r.fsync, r.batch) == (fsync, batch)]
        med = {
            name: float(np.median([getattr(r, name) for r in same]))
            for name in ("events_per_s", "p50_ms", "p99_ms", "events_per_cpu_s")
        }
        out.append({"fsync": fsync, "batch": batch, "runs": len(same), **med})
    return out


def ratios(runs: list[RunResult]) -> dict[str, float]:
    med = {(s["fsync"], s["batch"]): s["events_per_s"] for s in summary(runs)}
    return {
        str(batch): med[(True, batch)] / med[(False, batch)]
        for (fsync, batch) in med
        if fsync and med.get((False, batch), 0) > 0
    }


def machine_info() -> dict[str, Any]:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    commit = None
    if shutil.which("git"):
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
            cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
        commit = out.stdout.strip() or None
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": commit,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
