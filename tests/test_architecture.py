"""The import direction of docs/design.md ("Import rules"), checked over the real import graph.

The graph is built with `ast` from every module of eventlens/ (imports inside functions and
`TYPE_CHECKING` blocks count: they are dependencies too). Modules are grouped into components;
components sit in layers, top to bottom. A module may import its own component, or a component
in a LOWER layer; never one in its own layer (siblings stay independent) or above. That rules
out component cycles as well, which `component_cycles` reports in their own words.

The checker itself is tested: on a copy of the package with a planted upward import, and on
synthetic graphs.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Top to bottom. A component is a dotted prefix; the longest matching prefix names a module's
# component. Same-layer components must not import each other.
LAYERS: list[list[str]] = [
    ["eventlens.__main__"],
    ["eventlens.cli"],  # `eventlens serve` starts the web app
    ["eventlens.web"],
    ["eventlens.runtime"],  # the composition root: builds every service once
    # Benchmarks drive the services and engines directly; the load test speaks HTTP only.
    ["eventlens.bench", "eventlens.loadtest"],
    ["eventlens.shadow"],  # observes the query service; replays through its engines
    # Services. The query package's façade (`eventlens.query`), the engine registry, the pool,
    # the query log and the observer protocol belong to the query service.
    ["eventlens.query", "eventlens.dashboards", "eventlens.ingest", "eventlens.accounts"],
    # The result cache: below the query service that asks it to serve each query; it reaches
    # the engine only through the partial seam (eventlens.query.parallel.partials).
    ["eventlens.cache"],
    ["eventlens.capture"],  # ingest decodes the log records capture writes (capture.model)
    # Engines: neither imports the other.
    ["eventlens.query.parallel", "eventlens.query.reference"],
    ["eventlens.query.seams"],  # what engines plug into (SEAMS below)
    ["eventlens.query.semantics"],  # the rules both engines share
    ["eventlens.query.model"],  # the query model (QUERY_MODEL below)
    ["eventlens.persons"],
    ["eventlens.storage", "eventlens.projects", "eventlens.generate"],
    ["eventlens.auth"],
    # `eventlens` itself is the root package's __init__ (the version) only.
    [
        "eventlens",
        "eventlens.config",
        "eventlens.errors",
        "eventlens.observability",
        "eventlens.sqlite_db",
    ],
]
ROOT_PACKAGE = "eventlens"

# Components made of several modules: name -> module prefixes (any other component is its name).
GROUPS: dict[str, tuple[str, ...]] = {
    # Parsing, normalisation, dates, formulas and the deadline: what both engines read.
    "eventlens.query.model": (
        "eventlens.query.model",
        "eventlens.query.posthog_fields",
        "eventlens.query.normalise",
        "eventlens.query.dates",
        "eventlens.query.formula",
        "eventlens.query.deadline",
        "eventlens.query.regex",
        "eventlens.query.cohorts",
    ),
    # The seam both engines implement: the Engine protocol and its registry, the one table of
    # insight kinds, and the event source an engine reads (docs/adr/0007-seams.md).
    "eventlens.query.seams": (
        "eventlens.query.engines",
        "eventlens.query.kinds",
        "eventlens.query.source",
    ),
}

# Test helpers inside the package: no production module may import them.
TEST_HELPERS = {"eventlens.query.testing"}

# ---------------------------------------------------------------------------------------------
# KNOWN EXCEPTIONS — the one place. Import edges (importer, imported) that break the rules above
# today and are being removed on helper a1's branch (issue 11: shadow as an observer of the
# query service, the engines' shared rules in query.semantics). Delete each entry once the
# branch that removes it is merged; the test fails on an entry that no longer occurs.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()
# ---------------------------------------------------------------------------------------------

Graph = Mapping[str, set[str]]


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path, package: str = "eventlens") -> dict[str, set[str]]:
    """Module -> the package's modules it imports. `from a import b` counts as importing the
    module `a.b` when that is a module, else `a`; relative imports are resolved."""
    files = {_module_name(root, p): p for p in (root / package).rglob("*.py")}
    packages = {m for m, p in files.items() if p.name == "__init__.py"}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets: set[str] = set()
        base = module if module in packages else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = base.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    name = ".".join([*anchor, *([node.module] if node.module else [])])
                else:
                    name = node.module or ""
                for alias in node.names:
                    sub = f"{name}.{alias.name}"
                    targets.add(sub if sub in files else name)
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def component_of(
    module: str,
    layers: list[list[str]] = LAYERS,
    groups: Mapping[str, tuple[str, ...]] = GROUPS,
) -> str | None:
    """The component with the longest prefix of `module`, None if no layer names it."""
    best: tuple[int, str] | None = None
    for layer in layers:
        for comp in layer:
            for prefix in groups.get(comp, (comp,)):
                inside = module.startswith(prefix + ".") and prefix != ROOT_PACKAGE
                if (module == prefix or inside) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), comp)
    return None if best is None else best[1]


def _rank(layers: list[list[str]]) -> dict[str, int]:
    return {comp: i for i, layer in enumerate(layers) for comp in layer}


def violations(
    graph: Graph,
    layers: list[list[str]] = LAYERS,
    exceptions: Iterable[tuple[str, str]] = (),
    test_helpers: Iterable[str] = (),
) -> list[str]:
    """Every import edge that breaks the layering, as 'a -> b (why)'; sorted."""
    rank = _rank(layers)
    allowed = set(exceptions)
    helpers = set(test_helpers)
    out: list[str] = []
    for src in sorted(graph):
        src_comp = component_of(src, layers)
        for dst in sorted(graph[src]):
            if (src, dst) in allowed:
                continue
            if dst in helpers and src not in helpers:
                out.append(f"{src} -> {dst} (a production module imports a test helper)")
                continue
            dst_comp = component_of(dst, layers)
            if src_comp is None or dst_comp is None:
                out.append(f"{src} -> {dst} (module outside every layer: add it to LAYERS)")
            elif src_comp != dst_comp and rank[dst_comp] < rank[src_comp]:
                out.append(f"{src} -> {dst} (upward: {src_comp} is below {dst_comp})")
            elif src_comp != dst_comp and rank[dst_comp] == rank[src_comp]:
                out.append(f"{src} -> {dst} (sibling components {src_comp}, {dst_comp})")
    return out


def component_cycles(
    graph: Graph, layers: list[list[str]] = LAYERS, exceptions: Iterable[tuple[str, str]] = ()
) -> list[list[str]]:
    """Cycles between components (each as a path returning to its start), ignoring
    `exceptions` edges; [] when the component graph is acyclic."""
    allowed = set(exceptions)
    edges: dict[str, set[str]] = {}
    for src, dsts in graph.items():
        a = component_of(src, layers) or src
        for dst in dsts:
            b = component_of(dst, layers) or dst
            if a != b and (src, dst) not in allowed:
                edges.setdefault(a, set()).add(b)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return cycles


# -- the real tree --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT)


def test_import_direction_holds(graph: dict[str, set[str]]) -> None:
    found = violations(graph, exceptions=KNOWN_EXCEPTIONS, test_helpers=TEST_HELPERS)
    assert found == [], "imports against docs/design.md's direction:\n" + "\n".join(found)


def test_no_component_cycles(graph: dict[str, set[str]]) -> None:
    assert component_cycles(graph, exceptions=KNOWN_EXCEPTIONS) == []


def test_known_exceptions_still_occur(graph: dict[str, set[str]]) -> None:
    """An exception whose import is gone must be deleted, so the list only shrinks."""
    stale = sorted(e for e in KNOWN_EXCEPTIONS if e[1] not in graph.get(e[0], set()))
    assert stale == [], f"delete these from KNOWN_EXCEPTIONS: {stale}"


def test_only_the_event_table_imports_deltalake() -> None:
    importers = set()
    for path in (ROOT / "eventlens").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "deltalake" or n.startswith("deltalake.") for n in names):
                importers.add(_module_name(ROOT, path))
    assert importers == {"eventlens.storage.event_table"}


def test_handlers_reach_the_runtime_only_through_deps() -> None:
    readers = sorted(
        _module_name(ROOT, p)
        for p in (ROOT / "eventlens").rglob("*.py")
        if "state.runtime" in p.read_text()
    )
    # app.py sets it in the lifespan; deps.py is the one reader.
    assert readers == ["eventlens.web.app", "eventlens.web.deps"]


def _public_surface(package_dir: Path) -> list[str]:
    tree = ast.parse((package_dir / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return [str(v) for v in value]
    raise AssertionError(f"{package_dir}/__init__.py has no __all__")


# The query packages' surfaces are curated with the engine seam (issue 11, helper a1).
_SURFACE_EXEMPT = ("eventlens.query",)


def _curated_packages() -> list[Path]:
    return sorted(
        p.parent
        for p in (ROOT / "eventlens").rglob("__init__.py")
        if p.parent != ROOT / "eventlens" and not _module_name(ROOT, p).startswith(_SURFACE_EXEMPT)
    )


@pytest.mark.parametrize("package_dir", _curated_packages(), ids=lambda p: p.name)
def test_each_package_declares_its_public_surface(package_dir: Path) -> None:
    names = _public_surface(package_dir)
    assert names, f"{package_dir.name}.__all__ is empty"
    init = (package_dir / "__init__.py").read_text()
    for name in names:
        is_module = (package_dir / f"{name}.py").exists() or (package_dir / name).is_dir()
        assert is_module or name in init, f"{package_dir.name}.__all__ names missing {name!r}"


def test_other_components_import_only_the_public_surface(graph: dict[str, set[str]]) -> None:
    packages = {_module_name(ROOT, p / "__init__.py"): p for p in _curated_packages()}
    leaks = []
    for src, dsts in graph.items():
        for dst in dsts:
            owner = max((pkg for pkg in packages if dst.startswith(pkg + ".")), key=len, default="")
            if not owner or component_of(src) == component_of(dst):
                continue
            if (src, dst) in KNOWN_EXCEPTIONS:
                continue
            head = dst[len(owner) + 1 :].split(".")[0]
            if head not in _public_surface(packages[owner]):
                leaks.append(f"{src} -> {dst} ({owner}.__all__ does not list {head!r})")
    assert sorted(leaks) == []


# -- the checker catches what it should --------------------------------------------------------


def test_a_planted_upward_import_fails(tmp_path: Path) -> None:
    """storage importing the web layer, in a copy of the package: reported, and as a cycle."""
    shutil.copytree(
        ROOT / "eventlens",
        tmp_path / "eventlens",
        ignore=shutil.ignore_patterns("static", "__pycache__"),
    )
    planted = tmp_path / "eventlens" / "storage" / "schema.py"
    planted.write_text(planted.read_text() + "\nfrom eventlens.web import deps  # planted\n")
    copy = import_graph(tmp_path)
    found = violations(copy, exceptions=KNOWN_EXCEPTIONS, test_helpers=TEST_HELPERS)
    assert found == [
        "eventlens.storage.schema -> eventlens.web.deps "
        "(upward: eventlens.storage is below eventlens.web)"
    ]
    assert component_cycles(copy, exceptions=KNOWN_EXCEPTIONS) != []
    # The untouched copy is clean: the failure is the planted line's.
    planted.write_text(planted.read_text().replace("from eventlens.web import deps", ""))
    assert (
        violations(import_graph(tmp_path), exceptions=KNOWN_EXCEPTIONS, test_helpers=TEST_HELPERS)
        == []
    )


def test_checker_on_synthetic_graphs() -> None:
    layers = [["p.top"], ["p.mid", "p.side"], ["p.low"]]
    ok = {"p.top.a": {"p.mid.b", "p.low.c"}, "p.mid.b": {"p.low.c", "p.mid.x"}, "p.low.c": set()}
    assert violations(ok, layers) == []
    assert component_cycles(ok, layers) == []

    up = {"p.low.c": {"p.top.a"}, "p.top.a": {"p.low.c"}}
    assert violations(up, layers) == ["p.low.c -> p.top.a (upward: p.low is below p.top)"]
    assert component_cycles(up, layers) == [["p.low", "p.top", "p.low"]]
    assert violations(up, layers, exceptions={("p.low.c", "p.top.a")}) == []

    siblings = {"p.mid.b": {"p.side.d"}}
    assert violations(siblings, layers) == [
        "p.mid.b -> p.side.d (sibling components p.mid, p.side)"
    ]
    stray = {"p.top.a": {"q.unknown"}}
    assert "outside every layer" in violations(stray, layers)[0]
    helper = {"p.top.a": {"p.low.testing"}}
    assert "test helper" in violations(helper, layers, test_helpers={"p.low.testing"})[0]


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("from ..top import thing\n")
    (pkg / "top.py").write_text("thing = 1\n")
    assert import_graph(tmp_path, "pkg") == {
        "pkg": set(),
        "pkg.sub": {"pkg.sub.leaf"},
        "pkg.sub.leaf": {"pkg.top"},
        "pkg.top": set(),
    }
