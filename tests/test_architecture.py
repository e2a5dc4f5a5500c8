"""The package layering (docs/ARCHITECTURE.md): imports only point down, no import cycles.

Imports are read with `ast` from every module under planner/, wherever they sit: at the top, inside
a function, or under `if TYPE_CHECKING:` (a deferred import still ties the two modules together,
and that is where import cycles hide). Also checked: the third-party libraries each live in their
one package, and no module grows past 500 lines.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "planner"

# Bottom to top. A module may import its own package and any package of a lower rank; packages of
# the same rank are siblings and must not import each other.
RANKS: dict[str, int] = {
    "errors": 0, "units": 0, "resources": 0, "assumption": 0,
    "inputs": 1,
    "memory": 2,
    "perf": 3,
    "traffic": 4,
    "sim": 5,
    "billing": 6,
    "scenario": 7,
    "capacity": 8, "compare": 8,
    "optimize": 9,
    "calibrate": 10,
    "report": 11,
    "cli": 12,
}

# Old flat import paths kept working for outside code (bench/, docs, users): thin re-exports.
# Nothing inside planner/ may import them.
COMPAT_SHIMS = {
    "planner.precision", "planner.models", "planner.catalog", "planner.profile",
    "planner.calibration", "planner.perf_report", "planner.demand", "planner.plan",
    "planner.plan_result", "planner.verify", "planner.sim.setup",
}

# Known violations still to fix: (importer, imported). The list may only shrink: an entry that no
# longer occurs fails the test too, so the fix removes it here.
ALLOWED_UPWARD: set[tuple[str, str]] = set()
# Known module cycles still to fix, each as the sorted tuple of its modules.
ALLOWED_CYCLES: set[tuple[str, ...]] = set()
# cli/ commands share nothing but cli/_app (renderers belong in report/).
ALLOWED_CLI_SIBLINGS: set[tuple[str, str]] = set()

# Third-party libraries and the one place each may be imported from.
CONFINED = {
    "simpy": ("planner.sim",),
    "pulp": ("planner.optimize.milp",),
    "typer": ("planner.cli",),
    "click": ("planner.cli",),
    "matplotlib": ("planner.report",),
}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def imports_of(name: str, source: str, modules: Mapping[str, Path] = MODULES) -> set[str]:
    """Every planner module `name` imports, anywhere in its source (functions, TYPE_CHECKING too)."""
    package = name if MODULES.get(name, Path()).name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in modules else base)
    return {m for m in out if m == "planner" or m.startswith("planner.")}


def _third_party_of(source: str) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def _graph() -> dict[str, set[str]]:
    return {name: imports_of(name, path.read_text()) - {name} for name, path in MODULES.items()}


GRAPH = _graph()


def _top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_violations(graph: Mapping[str, Iterable[str]]) -> set[tuple[str, str]]:
    """(importer, imported) pairs that import a higher layer or a sibling package."""
    bad = set()
    for src, targets in graph.items():
        if src in COMPAT_SHIMS or src == "planner":
            continue
        for dst in targets:
            a, b = _top(src), _top(dst)
            if a == b or dst == "planner" or RANKS[a] == RANKS[b] == 0:
                continue  # own package; the base modules (units, errors, resources) share a rank
            if RANKS[b] >= RANKS[a]:
                bad.add((src, dst))
    return bad


def cycles(graph: Mapping[str, Iterable[str]]) -> set[tuple[str, ...]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[tuple[str, ...]] = set()
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.add(tuple(sorted(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_package_has_a_rank():
    tops = {_top(m) for m in MODULES if m != "planner" and m not in COMPAT_SHIMS}
    assert tops <= set(RANKS), f"give these a rank in RANKS (and docs/ARCHITECTURE.md): {tops - set(RANKS)}"


def test_imports_only_point_down():
    bad = layer_violations(GRAPH)
    assert bad - ALLOWED_UPWARD == set(), "imports of a higher layer or a sibling package"
    assert ALLOWED_UPWARD - bad == set(), "fixed: remove these from ALLOWED_UPWARD"


def test_no_import_cycles():
    found = cycles(GRAPH)
    assert found - ALLOWED_CYCLES == set(), "import cycles"
    assert ALLOWED_CYCLES - found == set(), "fixed: remove these from ALLOWED_CYCLES"


def test_the_simulator_sees_no_physics_or_prices():
    """sim/ gets a step-time model and a KV block count (`ReplicaSetup`), never builds them: no
    inputs/, memory/, perf/ or billing/ import (planner.scenario builds replicas)."""
    users = {(src, dst) for src, targets in GRAPH.items() if _top(src) == "sim" and src not in COMPAT_SHIMS
             for dst in targets if _top(dst) in ("inputs", "memory", "perf", "billing")}
    assert users == set()


def test_the_report_reads_results_not_the_planning_loop():
    """report/ renders `OptimizeResult`s; it never runs or imports the planning loop."""
    users = {(src, dst) for src, targets in GRAPH.items() if _top(src) == "report"
             for dst in targets if _top(dst) == "optimize" and dst != "planner.optimize.result"}
    assert users == set()


def test_nothing_inside_planner_uses_the_old_paths():
    users = {(src, dst) for src, targets in GRAPH.items() if src not in COMPAT_SHIMS
             for dst in targets if dst in COMPAT_SHIMS}
    assert users == set(), "import the new module, not its compatibility re-export"


def test_cli_commands_do_not_import_each_other():
    pairs = {(src, dst) for src, targets in GRAPH.items() if _top(src) == "cli"
             for dst in targets if _top(dst) == "cli" and dst not in ("planner.cli", "planner.cli._app")
             and src != "planner.cli"}
    assert pairs - ALLOWED_CLI_SIBLINGS == set()
    assert ALLOWED_CLI_SIBLINGS - pairs == set(), "fixed: remove these from ALLOWED_CLI_SIBLINGS"


def test_third_party_libraries_stay_in_their_package():
    for name, path in MODULES.items():
        libs = _third_party_of(path.read_text())
        for lib, homes in CONFINED.items():
            if lib in libs:
                assert any(name == h or name.startswith(h + ".") for h in homes), f"{lib} imported in {name}"


def test_no_module_over_500_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("source, expected", [
    ("import planner.sim", {"planner.sim"}),
    ("def f():\n    from planner.billing import cost_of", {"planner.billing"}),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from planner.sim.fleet import Fleet", {"planner.sim.fleet"}),
    ("from planner import billing, errors", {"planner.billing", "planner.errors"}),
    ("from . import fleet", {"planner.sim.fleet"}),
    ("import numpy", set()),
])
def test_imports_are_found_wherever_they_sit(source, expected):
    assert imports_of("planner.sim.replica", source) == expected


def test_the_checks_can_fail():
    """A made-up upward import and a made-up cycle are caught."""
    assert layer_violations({"planner.sim.fleet": {"planner.billing.cost"}}) == {("planner.sim.fleet", "planner.billing.cost")}
    assert layer_violations({"planner.capacity.tasks": {"planner.compare"}})  # siblings
    assert not layer_violations({"planner.billing.cost": {"planner.sim"}})
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {("a", "b", "c")}
    assert cycles({"a": {"b"}, "b": set()}) == set()


def test_every_package_ships_in_the_wheel():
    """pyproject's explicit package list names every package, or a non-editable install misses it."""
    import tomllib  # noqa: PLC0415

    listed = set(tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {name for name in MODULES if _is_package(name)}
    assert packages - listed == set()


def _public_api() -> list[str]:
    doc = (ROOT.parent / "docs" / "ARCHITECTURE.md").read_text()
    section = doc.split("## Public Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"`(planner(?:\.\w+)+)`", section)


def test_public_api_imports():
    """Every name docs/ARCHITECTURE.md lists as the public Python API imports from that path."""
    names = _public_api()
    assert len(names) >= 20
    for dotted in names:
        module, _, attr = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), dotted


def test_capacity_fingerprint_covers_the_code_and_the_data_tables():
    """The capacity cache key hashes every module a capacity depends on after the moves, and the
    catalog's data tables (kernel tables), so a change there cannot reuse a stale capacity."""
    import planner
    from planner.capacity.cache import FINGERPRINT_PACKAGES, fingerprint_files
    from planner.resources import data_dir

    # The imported package, which under CI is the installed copy rather than this checkout.
    root = Path(planner.__file__).resolve().parent
    files = set(fingerprint_files())
    for pkg in FINGERPRINT_PACKAGES:
        assert set((root / pkg).rglob("*.py")) <= files
    assert root / "scenario.py" in files
    catalog = Path(data_dir("gpu_catalog"))
    tables = [f for f in catalog.rglob("*") if f.is_file() and f.suffix not in (".yaml", ".yml", ".md")]
    assert tables and set(tables) <= files
