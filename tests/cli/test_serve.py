"""`eventlens serve` binds its port before it starts anything, and says so when it cannot."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from eventlens.cli.serve import bind, bound_port
from eventlens.errors import InvalidInput, Unavailable


def test_bind_port_0_picks_one_free_port_for_every_address() -> None:
    sockets = bind("localhost", 0)
    try:
        ports = {s.getsockname()[1] for s in sockets}
        assert ports == {bound_port(sockets)} and bound_port(sockets) > 0
        with socket.create_connection(("127.0.0.1", bound_port(sockets)), timeout=5):
            pass  # listening already, before any server runs
    finally:
        for s in sockets:
            s.close()


def test_bind_a_busy_port_raises_unavailable_naming_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(Unavailable) as info:
            bind("127.0.0.1", port)
    assert info.value.field == "port"
    assert f"port {port} is already in use" in info.value.message and "--port" in info.value.message


def test_bind_an_unknown_host_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        bind("no-such-host.invalid", 0)
    assert info.value.field == "host"


def test_serve_on_a_busy_port_exits_non_zero_without_starting(tmp_path: Path) -> None:
    """Regression: uvicorn bound the port only after the lifespan had started the consumer and
    the warm-up, logged the bind error and exited 3 (or died of a signal at exit)."""
    data_dir = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "eventlens", "serve", "--port", str(port),
             "--data-dir", str(data_dir)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert out.returncode == 6, (out.returncode, out.stderr[-3000:])  # Unavailable
    assert f"port {port} is already in use" in out.stderr and "--port" in out.stderr, out.stderr
    assert "consumer.spawned" not in out.stderr and "server.start" not in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--executor", "dask"], "unknown executor 'dask'"),
        (["--ray-address", "10.0.0.1:6379"], "--ray-address needs --executor ray"),
    ],
)
def test_serve_refuses_a_bad_executor_before_starting(
    tmp_path: Path, args: list[str], says: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "eventlens", "serve", "--port", "0",
         "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])  # InvalidInput
    assert says in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "data").exists()
