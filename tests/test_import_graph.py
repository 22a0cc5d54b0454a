"""No import cycle anywhere in bench/ (issue 21): the graph of every ``import bench.…`` / ``from bench… import``
statement in the package, module level and inside functions alike, is acyclic."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "bench"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name in modules and name != mod and not (mod.startswith(name + ".") or name == "bench"):
                    graph[mod].add(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_bench_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " → ".join(cycle)


def test_grouping_packages_import_nothing():
    """bench/spec/, bench/zoo/, bench/measure/, bench/execution/ and bench/records/ only group modules: their
    ``__init__.py`` imports nothing, so a torch-free module inside one (bench.zoo.catalog, bench.records.records …)
    stays torch-free when imported through its package."""
    for name in ("spec", "zoo", "measure", "execution", "records"):
        tree = ast.parse((PKG / name / "__init__.py").read_text())
        imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not imports, f"bench/{name}/__init__.py imports {ast.unparse(imports[0])}"
