from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, create_project


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def project(data_dir: Path) -> dict[str, str]:
    """A fresh project: {"id", "token", "api_key", ...} in `data_dir`."""
    return create_project(data_dir)


@pytest.fixture
def server(data_dir: Path, project: dict[str, str]) -> Iterator[ServerProcess]:
    """A real server on a loopback port over `data_dir` (which holds `project`)."""
    proc = ServerProcess(data_dir).start()
    try:
        yield proc
    finally:
        proc.stop()
