"""The package's architecture, checked from its source: no import cycle, and data flows one way
(sources -> records -> accounting -> report; a writer never reaches back into a session or a source).

Every ``import`` counts, at module level or inside a function (a lazy import that closes a cycle still ties the two
modules together), except under ``if TYPE_CHECKING:`` (never executed). Old module paths (``pyprof.gpu.x``) are
resolved through ``pyprof._aliases`` to the module they name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pyprof._aliases import new_name

ROOT = Path(__file__).resolve().parents[1] / "pyprof"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, leaving out ``if TYPE_CHECKING:`` bodies."""
    out: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The package module an imported dotted name refers to (the longest prefix that is a module), or None."""
    name = new_name(name) or name
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Package module -> the package modules it imports (itself excluded)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    pkg = mod if is_pkg else mod.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    base = f"{pkg}.{base}" if base else pkg
                # `from pkg import sub` imports the submodule when there is one, else a name of pkg
                targets = [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                if not t.startswith("pyprof"):
                    continue
                r = _resolve(t, modules)
                if r is not None and r != mod:
                    graph[mod].add(r)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (iterative depth-first search, white/grey/black)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            nxt = todo.pop(0)
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(graph.get(nxt, ()))))
    return None


def test_cycle_finder_finds_a_planted_cycle():
    # a -> b -> c -> a, plus a tail d -> a: the finder must report the loop, not the tail
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    cyc = find_cycle(g)
    assert cyc is not None and cyc[0] == cyc[-1] and set(cyc) == {"a", "b", "c"}
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    """The graph is built from the real tree: a known lazy (function-level) edge must be in it."""
    g = import_graph()
    # pyprof.report.writers imports pyprof.report.html inside _render_html (HTML deps load only when asked for)
    assert "pyprof.report.html" in g["pyprof.report.writers"]
    assert "pyprof.records" in g["pyprof.report.json_report"]


def test_package_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("layer, forbidden", [
    ("pyprof.report", ("pyprof.session", "pyprof.sources")),
    ("pyprof.sources", ("pyprof.session", "pyprof.report", "pyprof.accounting")),
])
def test_layers_import_only_downwards(layer, forbidden):
    g = import_graph()
    bad = sorted(f"{m} imports {t}" for m, ts in g.items() if m == layer or m.startswith(layer + ".")
                 for t in ts if any(t == f or t.startswith(f + ".") for f in forbidden))
    assert not bad, "layering broken (a writer/source must not reach up):\n" + "\n".join(bad)
