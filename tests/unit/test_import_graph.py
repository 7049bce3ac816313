"""The layout's rules, read from the code: which package may import which (``DESIGN.md``'s
layout table), no cycle between modules, the domain free of service clients, and no runtime
module much over 400 lines.

Every ``import`` counts, at the top of a module or inside a function: a lazy import is still
a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "scoring", "retraining", "api", "streams", "simulator", "tooling")
RUNTIME = ("schemas", "scoring", "retraining", "api", "streams")
# what each package may import of ours
MAY_IMPORT = {
    "schemas": set(),
    "scoring": {"schemas"},
    "retraining": {"schemas", "scoring"},
    "api": {"schemas", "scoring"},
    "streams": {"schemas", "scoring", "retraining", "api"},
    "simulator": {"schemas", "scoring", "retraining"},
    "tooling": set(PACKAGES),
}
# service clients and frameworks the pure domain never imports (adapters/ may)
SERVICE_LIBRARIES = ("redis", "mlflow", "evidently", "faust", "aiokafka", "fastapi", "httpx")
MAX_RUNTIME_LINES = 420


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The modules ``path`` imports (absolute names; ``from a import b`` gives ``a.b`` when
    that is a module of ours, else ``a``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def our_modules() -> dict[str, Path]:
    return {
        module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }


MODULES = our_modules()
GRAPH = {
    name: {imported for imported in imports_of(path) if imported in MODULES and imported != name}
    for name, path in MODULES.items()
}


def test_each_package_imports_only_what_the_layout_allows() -> None:
    wrong = sorted(
        f"{name} imports {imported}"
        for name, imported_set in GRAPH.items()
        for imported in imported_set
        if (top := imported.split(".")[0]) != name.split(".")[0]
        and top not in MAY_IMPORT[name.split(".")[0]]
    )
    assert wrong == []


def test_the_runtime_never_imports_the_tooling_or_the_simulator() -> None:
    wrong = sorted(
        f"{name} imports {imported}"
        for name, imported_set in GRAPH.items()
        if name.split(".")[0] in RUNTIME
        for imported in imported_set
        if imported.split(".")[0] in ("tooling", "simulator")
    )
    assert wrong == []


def test_no_module_imports_itself_back_through_others() -> None:
    cycles = find_cycles(GRAPH)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_domain_imports_no_service_client_outside_its_adapters() -> None:
    wrong = sorted(
        f"{name} imports {imported}"
        for name, path in MODULES.items()
        if name.split(".")[0] in ("schemas", "scoring", "retraining") and ".adapters" not in name
        for imported in imports_of(path)
        if imported.split(".")[0] in SERVICE_LIBRARIES
    )
    assert wrong == []


def test_no_runtime_module_is_much_over_400_lines() -> None:
    long = sorted(
        f"{name}: {lines} lines"
        for name, path in MODULES.items()
        if name.split(".")[0] in RUNTIME
        and (lines := len(path.read_text().splitlines())) > MAX_RUNTIME_LINES
    )
    assert long == []


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle once (Tarjan's strongly connected components of more than one module).

    >>> find_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    >>> find_cycles({"a": {"b"}, "b": set()})
    []
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


@pytest.mark.parametrize(
    ("graph", "expected"),
    [({"streams.app": {"tooling.bench"}}, ["streams.app imports tooling.bench"])],
)
def test_the_rule_check_fails_on_a_runtime_module_importing_the_tooling(
    graph: dict[str, set[str]], expected: list[str]
) -> None:
    found = [
        f"{name} imports {imported}"
        for name, imported_set in graph.items()
        for imported in imported_set
        if imported.split(".")[0] not in MAY_IMPORT[name.split(".")[0]]
        and imported.split(".")[0] != name.split(".")[0]
    ]
    assert found == expected
