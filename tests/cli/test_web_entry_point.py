"""wsgi.py, the web process's entry point (gunicorn wsgi:app), as gunicorn loads it: in a process of its own."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_web_process_freezes_what_its_start_up_loaded(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}", "CHIME_INSTANCE_PATH": str(tmp_path)}
    probe = "import gc, wsgi; print(gc.get_freeze_count(), wsgi.app.name)"

    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)

    assert result.returncode == 0, result.stderr
    frozen, name = result.stdout.split()
    assert name == "webapp" and int(frozen) > 10_000  # the modules, the app and its mappers: ~140,000
