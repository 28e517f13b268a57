"""The house rules that keep gradsheet readable, checked on the source itself (docs/architecture.md):
imports flow one way (faces -> actions -> sheets -> cells and wording -> ml), with no cycle, imports inside
functions included; no function over 60 lines and no module over 600 outside the tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ml", "excel_addin")
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 60, 600
# room -> the rooms it must never import (a room is a module prefix)
FORBIDDEN = {
    "ml": ("excel_addin",),
    "excel_addin.sheets": (
        "excel_addin.buttons",
        "excel_addin.worker",
        "excel_addin.report",
        "excel_addin.classic",
        "excel_addin.server",
        "excel_addin.xlsm",
        "excel_addin.testing",
    ),
    "excel_addin.cells": ("excel_addin.sheets", "excel_addin.buttons", "excel_addin.server"),
    "excel_addin.status_line": ("excel_addin.cells", "excel_addin.sheets", "excel_addin.buttons"),
    "excel_addin.buttons": ("excel_addin.classic", "excel_addin.server", "excel_addin.xlsm"),
    "excel_addin.worker": ("excel_addin.classic", "excel_addin.server", "excel_addin.xlsm"),
    "excel_addin.jobs": ("excel_addin.classic", "excel_addin.server", "excel_addin.xlsm"),
    "excel_addin.slots": ("excel_addin.classic", "excel_addin.server", "excel_addin.sheets"),
    "excel_addin.server": ("excel_addin.classic", "excel_addin.xlsm", "excel_addin.testing"),
    "excel_addin.classic": ("excel_addin.server", "excel_addin.testing"),
}
# The workbook's vocabulary (which cell holds what, the Custom model table's words) sits below everything.
VOCABULARY = ("excel_addin.sheets.layout", "excel_addin.sheets.custom_model")


def module_files() -> dict[str, Path]:
    """Dotted module name -> its file, for every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (inside functions too)."""
    found = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                child = f"{module}.{alias.name}"
                found.add(child if child in modules else module)
    return {m for m in found if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(start: str) -> None:
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle(graph):
    assert cycles(graph) == []


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_flow_one_way(graph):
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        for room, forbidden in FORBIDDEN.items()
        if module == room or module.startswith(room + ".")
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in forbidden) and target not in VOCABULARY
    ]
    assert wrong == []


def source_files() -> list[Path]:
    folders = (*PACKAGES, "bench", "docs", "examples")
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_no_module_over_600_lines():
    long = {
        str(p.relative_to(ROOT)): n for p in source_files() if (n := len(p.read_text().splitlines())) > 600
    }
    assert long == {}


def test_no_function_over_60_lines():
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in source_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
