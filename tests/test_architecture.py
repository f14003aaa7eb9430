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
