"""The layering holds (STYLE.md section 2, issue #19): imports point down, and never in a loop.

Measured on the real import graph (grimp, the graph library behind import-linter), type-only
imports included: a `TYPE_CHECKING` import is still a dependency a reader has to follow.
The checker itself is tested on graphs with a planted upward import and a planted cycle, so
a rule that silently matched nothing would fail here too.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable

import grimp
import pytest

ROOT = "pieces_integration"

# Each area, and the areas of this package it must never import.
FORBIDDEN: dict[str, frozenset[str]] = {
    "domain": frozenset(
        {
            "ports",
            "service_layer",
            "adapters",
            "entrypoints",
            "bootstrap",
            "config",
            "observability",
            "emulators",
        }
    ),
    "ports": frozenset(
        {"service_layer", "adapters", "entrypoints", "bootstrap", "config", "emulators"}
    ),
    "service_layer": frozenset({"adapters", "entrypoints", "bootstrap", "emulators"}),
    "adapters": frozenset({"service_layer", "entrypoints", "bootstrap", "emulators"}),
    "observability": frozenset({"service_layer", "adapters", "entrypoints", "bootstrap"}),
    "config": frozenset({"service_layer", "adapters", "entrypoints", "bootstrap", "emulators"}),
    "emulators": frozenset({"service_layer", "adapters", "entrypoints", "bootstrap"}),
    # The composition root builds everything below it; only the entrypoints use it.
    "bootstrap": frozenset({"entrypoints"}),
}
# Nothing imports the entrypoints but the entrypoints and `python -m pieces_integration`.
ENTRYPOINT_IMPORTERS = frozenset({"entrypoints", "__main__"})


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _edges(graph: grimp.ImportGraph) -> Iterable[tuple[str, str]]:
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            yield importer, imported


def upward_imports(graph: grimp.ImportGraph) -> list[str]:
    found = []
    for importer, imported in _edges(graph):
        source, target = _area(importer), _area(imported)
        if target in FORBIDDEN.get(source, frozenset()):
            found.append(f"{importer} -> {imported}")
        elif target == "entrypoints" and source not in ENTRYPOINT_IMPORTERS:
            found.append(f"{importer} -> {imported}")
    return found


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    succ = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for start in sorted(succ):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            if child < len(succ[node]):
                work.append((node, child + 1))
                nxt = succ[node][child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return cycles


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(ROOT)


def test_no_import_points_up_a_layer(graph: grimp.ImportGraph) -> None:
    assert upward_imports(graph) == []


def test_there_are_no_import_cycles(graph: grimp.ImportGraph) -> None:
    assert import_cycles(graph) == []


def test_every_area_named_in_the_rules_exists(graph: grimp.ImportGraph) -> None:
    areas = {_area(module) for module in graph.modules}
    assert set(FORBIDDEN) <= areas


def test_the_checker_finds_a_planted_upward_import_and_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("p.domain.model", "p.service_layer.sync", "p.adapters.sql", "p.adapters.http"):
        graph.add_module(module)
    graph.add_import(importer="p.service_layer.sync", imported="p.domain.model")
    assert upward_imports(graph) == [] and import_cycles(graph) == []
    graph.add_import(importer="p.domain.model", imported="p.service_layer.sync")
    graph.add_import(importer="p.adapters.sql", imported="p.adapters.http")
    graph.add_import(importer="p.adapters.http", imported="p.adapters.sql")
    assert upward_imports(graph) == ["p.domain.model -> p.service_layer.sync"]
    assert sorted(import_cycles(graph)) == [
        ["p.adapters.http", "p.adapters.sql"],
        ["p.domain.model", "p.service_layer.sync"],
    ]


def test_domain_imports_no_framework_or_driver() -> None:
    code = (
        "import sys, pkgutil, importlib, pieces_integration.domain as d\n"
        "for m in pkgutil.iter_modules(d.__path__):\n"
        "    importlib.import_module('pieces_integration.domain.' + m.name)\n"
        "bad = {'fastapi','starlette','sqlalchemy','httpx','redis','asyncpg','qdrant_client',"
        "'uvicorn','websockets'} & {n.split('.')[0] for n in sys.modules}\n"
        "print(sorted(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
