"""Tests stand alone: none patches a module of the service at import time (that would leak
into every test collected after it, so a `-k` subset would test other code than a full run),
and none imports another test module (shared fakes live in tests/fakes.py)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _test_files() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def _module_names(tree: ast.Module) -> set[str]:
    """Module-level names bound to the service's modules (`import a.b as x`, `from a import b`)."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pieces_integration"):
                    names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "pieces_integration"
        ):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def module_level_patches(source: str) -> list[str]:
    tree = ast.parse(source)
    imported = _module_names(tree)
    found = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            root = target
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(target, ast.Attribute) and isinstance(root, ast.Name):
                if root.id in imported:
                    found.append(f"line {node.lineno}: {ast.unparse(target)}")
    return found


def imports_of_test_modules(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [
            n for n in names if n.startswith("tests.") and n.rsplit(".", 1)[-1].startswith("test_")
        ]
    return found


def test_no_test_patches_a_service_module_at_import_time() -> None:
    offenders = {
        str(path.relative_to(TESTS)): found
        for path in _test_files()
        if (found := module_level_patches(path.read_text()))
    }
    assert offenders == {}


def test_no_test_imports_another_test_module() -> None:
    offenders = {
        str(path.relative_to(TESTS)): found
        for path in _test_files()
        if (found := imports_of_test_modules(path.read_text()))
    }
    assert offenders == {}


def test_the_checks_see_a_planted_patch_and_a_planted_import() -> None:
    patched = (
        "from pieces_integration import sync_wiring\n"
        "import pieces_integration.bootstrap as root\n"
        "sync_wiring.Guard = object\n"
        "root.x.y = 1\n"
        "local = 2\n"
    )
    assert module_level_patches(patched) == ["line 3: sync_wiring.Guard", "line 4: root.x.y"]
    assert imports_of_test_modules("from tests.e2e.test_search_api import call\n") == [
        "tests.e2e.test_search_api"
    ]
    assert imports_of_test_modules("from tests.fakes import FakeClock\n") == []
