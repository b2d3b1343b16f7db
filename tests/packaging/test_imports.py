"""What `pip install .` must be enough for: the package imports only what pyproject.toml declares.

Computed from pyproject.toml and the installed distributions' metadata, not from a list:
- an import that runs when a module is imported (module or class level) is of the standard
  library, of eventlens, or of a distribution in `[project] dependencies`;
- an import inside a function may also be of the `bench` extra, and only under eventlens/bench/
  (the bench commands import those lazily, so `eventlens --help` works without them), or of
  the `cluster` extra (Ray), and only in the Ray executor (imported when it is chosen);
- no import anywhere is of a test-only distribution.
A subprocess then imports every module and asks every command for `--help` with the test and
bench extras made unimportable.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.packaging.deps import PACKAGE, ROOT, declared, modules_of, providers


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # top-level name
    at_import_time: bool


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> Iterator[Import]:
    def visit(node: ast.AST, eager: bool) -> Iterator[Import]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            eager = False
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # the body only runs under a type checker
                yield from visit(child, eager)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        for name in names:
            yield Import(path, getattr(node, "lineno", 0), name.split(".")[0], eager)
        for child in ast.iter_child_nodes(node):
            yield from visit(child, eager)

    yield from visit(ast.parse(path.read_text(), str(path)), True)


def _third_party() -> list[Import]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for imp in _imports(path):
            if imp.module not in sys.stdlib_module_names and imp.module != "eventlens":
                out.append(imp)
    return out


def _where(imp: Import) -> str:
    return f"{imp.path.relative_to(ROOT)}:{imp.line} imports {imp.module}"


def test_the_import_scan_sees_eager_lazy_and_type_only_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import a.b\nfrom c import d\nif TYPE_CHECKING:\n    import hidden\n"
        "class K:\n    import e\n"
        "def f():\n    import g\n    importlib.import_module('h.i')\n"
    )
    found = {(i.module, i.at_import_time) for i in _imports(source)}
    assert found == {("a", True), ("c", True), ("e", True), ("g", False), ("h", False)}


def test_modules_import_only_declared_distributions() -> None:
    runtime, extras = declared()
    by_module = providers()
    bench = extras.get("bench", set())
    loadtest = extras.get("loadtest", set())
    cluster = extras.get("cluster", set())
    ray_executor = PACKAGE / "query" / "parallel" / "ray_executor.py"
    problems = []
    imports = _third_party()
    for imp in imports:
        dists = by_module.get(imp.module)
        lazy_bench = not imp.at_import_time and PACKAGE / "bench" in imp.path.parents
        # `eventlens loadtest` imports Locust (in its child process) and psutil only when run.
        lazy_loadtest = not imp.at_import_time and (
            PACKAGE / "loadtest" in imp.path.parents or imp.path == PACKAGE / "cli" / "loadtest.py"
        )
        lazy_ray = not imp.at_import_time and imp.path == ray_executor
        if not dists:
            problems.append(f"{_where(imp)}, which no installed distribution provides")
        elif (
            dists & runtime
            or (lazy_bench and dists & bench)
            or (lazy_loadtest and dists & loadtest)
            or (lazy_ray and dists & cluster)
        ):
            continue
        elif imp.at_import_time:
            problems.append(f"{_where(imp)} at import time; {sorted(dists)} is not a runtime dep")
        else:
            problems.append(f"{_where(imp)}: {sorted(dists)} is neither runtime nor bench-only")
    assert len(imports) > 50, "the scan found too few imports to be looking at the package"
    assert not problems, "\n".join(problems)


_BLOCKED_RUN = """
import importlib, os, pkgutil, sys
BLOCKED = set(os.environ["BLOCKED_MODULES"].split(","))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Block())
import eventlens
for info in pkgutil.walk_packages(eventlens.__path__, "eventlens."):
    if info.name != "eventlens.__main__":  # it runs the CLI
        importlib.import_module(info.name)

import typer.main
from typer.testing import CliRunner
from eventlens.cli.main import app

def commands(cmd, path):
    yield path
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        yield from commands(sub, [*path, name])

runner = CliRunner()
paths = list(commands(typer.main.get_command(app), []))
for path in paths:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, (path, result.output, result.exception)
    assert "Usage" in result.output, (path, result.output)

# A bench command without its extra says what to install (exit 6), no traceback.
import tempfile
with tempfile.TemporaryDirectory() as tmp:
    report = f"{tmp}/report.json"
    open(report, "w").write("{}")
    result = runner.invoke(app, ["bench", "plot", report, f"{tmp}/out.png"])
assert result.exit_code == 6, (result.exit_code, result.output)
assert "pip install 'eventlens[bench]'" in result.output, result.output
assert "Traceback" not in result.output, result.output
# So does the load test without its extra (Locust).
args = ["loadtest", "--url", "http://127.0.0.1:9", "--token", "t", "--project-id", "1"]
result = runner.invoke(app, [*args, "--api-key", "k"])
assert result.exit_code == 6, (result.exit_code, result.output)
assert "pip install 'eventlens[loadtest]'" in result.output, result.output
print(len(paths), "commands")
"""


def test_every_module_and_every_help_work_without_test_and_bench_extras() -> None:
    runtime, extras = declared()
    optional = set().union(*extras.values()) - runtime
    blocked = sorted(modules_of(optional) - modules_of(runtime))
    assert "httpx" in blocked and "pytest" in blocked and "matplotlib" in blocked
    out = subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(ROOT), "BLOCKED_MODULES": ",".join(blocked)},
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert int(out.stdout.split()[0]) > 20, out.stdout
