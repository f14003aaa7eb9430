"""The Makefile's install stamps, read through `make -n` (what make would run, nothing is run):
`make run` installs requirements.txt only, `make test` adds requirements-dev.txt, an edited
requirements file means a reinstall, and switching between the two installs nothing twice."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = "pip install -q -r requirements.txt"
DEV = "pip install -q -r requirements-dev.txt"

pytestmark = pytest.mark.skipif(shutil.which("make") is None or shutil.which("cksum") is None,
                                reason="needs make and cksum")


def checksum(*names: str) -> str:
    """POSIX cksum of the files' concatenation, as the stamp names carry it."""
    data = b"".join((ROOT / name).read_bytes() for name in names)
    return subprocess.run(["cksum"], input=data, capture_output=True, check=True).stdout.split()[0].decode()


def would_run(target: str, venv: Path) -> str:
    result = subprocess.run(["make", "-n", "--no-print-directory", target, f"VENV={venv}"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    return result.stdout


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A venv folder that exists (bin/python) with no install stamp yet."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").touch()
    return tmp_path


def stamp(venv: Path, kind: str, *names: str) -> None:
    (venv / f".installed-{kind}-{checksum(*names)}").touch()


def test_make_run_installs_the_runtime_requirements_and_never_the_test_ones(venv: Path) -> None:
    commands = would_run("run", venv)
    assert RUNTIME in commands
    assert "requirements-dev.txt" not in commands


def test_make_test_installs_the_runtime_then_the_test_requirements(venv: Path) -> None:
    commands = would_run("test", venv)
    assert RUNTIME in commands and DEV in commands
    assert commands.index(RUNTIME) < commands.index(DEV)


def test_make_test_after_make_run_adds_only_the_test_requirements(venv: Path) -> None:
    stamp(venv, "run", "requirements.txt")
    assert "pip install" not in would_run("run", venv)
    commands = would_run("test", venv)
    assert DEV in commands and RUNTIME not in commands


def test_make_run_after_make_test_installs_nothing(venv: Path) -> None:
    stamp(venv, "run", "requirements.txt")
    stamp(venv, "dev", "requirements.txt", "requirements-dev.txt")
    assert "pip install" not in would_run("run", venv)
    assert "pip install" not in would_run("test", venv)


def test_stamps_of_other_requirements_mean_a_reinstall(venv: Path) -> None:
    (venv / ".installed-run-1").touch()  # what an earlier requirements.txt left
    (venv / ".installed-dev-2").touch()
    assert RUNTIME in would_run("run", venv)
    commands = would_run("test", venv)
    assert RUNTIME in commands and DEV in commands


def test_a_missing_venv_is_created_first(tmp_path: Path) -> None:
    commands = would_run("run", tmp_path / "venv")
    assert commands.index("-m venv") < commands.index(RUNTIME)
