"""The layers of ARCHITECTURE.md hold: webapp -> scheduler -> chime -> jobs, never upwards."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("webapp", "scheduler", "chime", "jobs")  # top to bottom


def imported_chime_packages(path: Path) -> set[str]:
    """The top-level Chime packages a module imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
    return names & set(PACKAGES)


def test_the_import_linter_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--config", str(ROOT / ".importlinter")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contract_covers_every_top_level_package() -> None:
    contract = (ROOT / ".importlinter").read_text()
    for package in PACKAGES:
        assert f"\n    {package}\n" in contract


def test_no_package_imports_a_package_above_it_even_inside_a_function() -> None:
    upward = []
    for level, package in enumerate(PACKAGES):
        above = set(PACKAGES[:level])
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imported_chime_packages(path) & above:
                upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert upward == []


MAX_FUNCTION_LINES = 50


def product_modules() -> dict[str, Path]:
    """Every module of the four packages, by dotted name."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The product modules `path` imports (`from a.b import c` counts a.b.c when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found & set(modules)


def cycle_through(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path start -> ... -> start in the import graph, or None."""
    stack, seen = [(start, [start])], set()
    while stack:
        name, path = stack.pop()
        for target in sorted(graph[name]):
            if target == start:
                return path + [start]
            if target not in seen:
                seen.add(target)
                stack.append((target, path + [target]))
    return None


def test_no_module_imports_itself_through_others() -> None:
    modules = product_modules()
    graph = {name: imported_modules(path, modules) - {name} for name, path in modules.items()}
    cycles = {" -> ".join(found) for name in graph if (found := cycle_through(name, graph))}
    assert cycles == set()


def test_no_function_in_product_code_is_longer_than_fifty_lines() -> None:
    long_functions = []
    for name, path in product_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name}: {lines} lines")
    assert long_functions == []
