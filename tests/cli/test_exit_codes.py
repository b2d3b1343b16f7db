"""The CLI's exit codes: one table (eventlens/cli/errors.py), documented, used by every command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eventlens import errors
from eventlens.cli import errors as exits
from eventlens.cli.main import app
from eventlens.cli.query import remote_error_class
from tests.support.server import free_port, run_cli

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> dict[int, set[str]]:
    """{code: error class names} from the table under "## CLI exit codes" in operations.md."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("## CLI exit codes", 1)[1].split("\n## ", 1)[0]
    table: dict[int, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            table[int(cells[0])] = set(re.findall(r"`(\w+)`", cells[-1]))
    return table


def _error_classes() -> list[type[errors.EventLensError]]:
    return [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.EventLensError)
    ]


def test_every_error_class_maps_to_the_code_the_docs_give_it() -> None:
    documented = _documented()
    classes = _error_classes()
    assert len(classes) >= 12
    for cls in classes:
        code = exits.exit_code(cls("x"))
        assert cls.__name__ in documented.get(code, set()), (cls.__name__, code, documented)
    named = {name for names in documented.values() for name in names}
    assert named == {c.__name__ for c in classes}
    constants = {v for k, v in vars(exits).items() if k.isupper() and isinstance(v, int)}
    assert constants == set(documented), (constants, set(documented))


def test_the_categories_have_distinct_codes() -> None:
    codes = {
        cls: exits.exit_code(cls("x"))
        for cls in (
            errors.InvalidInput,
            errors.NotFound,
            errors.AuthenticationError,
            errors.PermissionDenied,
            errors.Unavailable,
            errors.QueryTimeout,
            errors.ExecutionError,
        )
    }
    assert len(set(codes.values())) == len(codes), codes
    assert exits.NO not in codes.values() and exits.INTERNAL not in codes.values()
    assert exits.exit_code(errors.InvalidQuery("x")) == exits.INVALID_INPUT  # subclass of input


def test_a_remote_error_answer_maps_to_the_class_it_names() -> None:
    assert remote_error_class(400, "InvalidQuery") is errors.InvalidQuery
    assert remote_error_class(401, None) is errors.AuthenticationError
    assert remote_error_class(404, "NoSuchClass") is errors.NotFound
    assert remote_error_class(400, "ValueError") is errors.InvalidInput  # not one of ours
    assert remote_error_class(502, None) is errors.ExecutionError


@pytest.fixture
def query_file(tmp_path: Path) -> Path:
    q = tmp_path / "q.json"
    q.write_text(json.dumps({"kind": "TrendsQuery", "series": [{"event": "a"}]}))
    return q


def _check(out: object, code: int, *needles: str) -> None:
    import subprocess

    assert isinstance(out, subprocess.CompletedProcess)
    assert out.returncode == code, (out.returncode, out.stderr[-2000:])
    for needle in needles:
        assert needle in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_commands_exit_with_the_mapped_codes(
    data_dir: Path, project: dict[str, str], query_file: Path, tmp_path: Path
) -> None:
    pid = str(project["id"])
    _check(
        run_cli("query", "--project", "999", str(query_file), data_dir=data_dir, check=False),
        exits.NOT_FOUND,
        "999",
    )
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    _check(
        run_cli("query", "--project", pid, str(bad), data_dir=data_dir, check=False),
        exits.INVALID_INPUT,
        "not valid JSON",
    )
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"kind": "TrendsQuery", "series": [{"event": "a"}], "x": 1}))
    _check(
        run_cli("query", "--project", pid, str(invalid), data_dir=data_dir, check=False),
        exits.INVALID_INPUT,
        "x",
    )
    _check(
        run_cli("import", str(query_file), "--project", "999", data_dir=data_dir, check=False),
        exits.NOT_FOUND,
        "no project with id 999",
    )
    _check(
        run_cli("deadletter", "list", "--project", "999", data_dir=data_dir, check=False),
        exits.NOT_FOUND,
        "999",
    )
    _check(
        run_cli(
            "project", "create", "x", "--timezone", "Mars/Base", data_dir=data_dir, check=False
        ),
        exits.INVALID_INPUT,
        "unknown timezone",
    )
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    _check(
        run_cli(
            *("query", "--project", pid, str(query_file), "--url", url, "--api-key", "phx_x"),
            data_dir=data_dir,
            check=False,
        ),
        exits.UNAVAILABLE,
        f"cannot reach {url}",
    )
    usage = run_cli("query", "--no-such-option", data_dir=data_dir, check=False)
    assert usage.returncode == exits.INVALID_INPUT and "No such option" in usage.stderr


def test_an_unexpected_exception_is_an_internal_error_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("planted bug")

    monkeypatch.setattr("eventlens.cli.projects.SqliteMetadataStore", broken)
    result = CliRunner().invoke(app, ["project", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == exits.INTERNAL, result.output
    assert "Traceback" in result.output and "internal error" in result.output
    assert "RuntimeError: planted bug" in result.output


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("eventlens.cli.projects.SqliteMetadataStore", interrupted)
    result = CliRunner().invoke(app, ["project", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == exits.INTERRUPTED, result.output
