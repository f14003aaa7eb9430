"""Your own jobs as real processes: the example package (examples/chime-example-jobs), installed as pip
installs it and found through its `chime.jobs` entry point, is loaded by the web app, the CLI, the worker
and the scheduler; a job module that cannot be imported stops each of them with its name and the cause."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest

from chime.timeutil import utcnow
from tests.engine.helpers import executions
from tests.engine_fixtures import ROOT, Engine, procfile_command, wait_for

pytestmark = pytest.mark.engine

TOKEN = "own-jobs-test-token"
EXAMPLE = ROOT / "examples" / "chime-example-jobs"
COMMAND_TIMEOUT_SECONDS = 60


@pytest.fixture
def example_installed(tmp_path: Path) -> Path:
    """The example package installed by pip into a folder of its own (put on the processes' PYTHONPATH)."""
    source, target = tmp_path / "example-src", tmp_path / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)],
                   check=True, capture_output=True, timeout=COMMAND_TIMEOUT_SECONDS)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Call the web process's API with the test's token; return (status, JSON body)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/live/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def flask(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start `flask --app wsgi ARGS` (read it with .communicate())."""
    return subprocess.Popen([str(Path(sys.executable).parent / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen[str]) -> str:
    """Wait for a command; return its output, failing the test on a non-zero exit."""
    stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
    assert process.returncode == 0, stderr
    return stdout


def test_the_example_package_is_listed_scheduled_and_run_by_every_process(
        engine: Engine, engine_app: Any, example_installed: Path, tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "appended.txt"
    engine.env.update(PYTHONPATH=str(example_installed), API_TOKENS=TOKEN, PORT=str(port), WEB_CONCURRENCY="1")
    engine.start("web")
    engine.start_engine(engine_app.extensions["redis"])
    wait_for(lambda: web_answers(port), 30, "the web process to answer", engine)
    listing = flask(engine.env, "jobs")  # the CLI, side by side with what follows

    status, jobs = call(port, "GET", "/api/jobs/")
    assert status == 200
    listed = {job["name"]: job for job in jobs}
    assert [(p["name"], p["type"], p["required"], p["default"]) for p in listed["example_append_once"]["parameters"]] \
        == [("path", "string", True, None), ("line", "string", True, None), ("fail_first_attempt", "boolean", False, False)]
    assert listed["example_greet"]["parameters"][0]["default"] == "world"

    status, task = call(port, "POST", "/api/tasks/", {
        "name": "append once", "job": "example_append_once", "schedule_type": "ONE_TIME",
        "run_at": utcnow().isoformat(), "max_retries": 1, "retry_backoff_seconds": 1,
        "args": {"path": str(out), "line": "hello", "fail_first_attempt": True}})
    assert status == 201, task
    wait_for(lambda: [r.status for r in executions(task["id"])] == ["RETRYING", "SUCCESS"], 30,
             "the first attempt to fail after writing and its retry to succeed", engine)
    first, retry = executions(task["id"])
    key = f"chime-{task['id']}-{first.scheduled_for.astimezone(timezone.utc):%Y%m%dT%H%M%S.%fZ}"
    assert retry.scheduled_for == first.scheduled_for
    assert retry.result == {"idempotency_key": key, "written": False, "attempt": 2}
    assert out.read_text().splitlines() == [f"{key} append once attempt 1 (SCHEDULE): hello"]

    assert any(line.startswith("example_append_once ") for line in finished(listing).splitlines())
    finished(flask(engine.env, "tasks", "run", str(task["id"])))
    wait_for(lambda: [(r.trigger, r.status) for r in executions(task["id"])[2:]] == [
        ("MANUAL", "RETRYING"), ("RETRY", "SUCCESS")], 30, "the manual run and its retry", engine)

    lines = out.read_text().splitlines()
    assert len(lines) == 2 and lines[1].endswith("append once attempt 1 (MANUAL): hello")
    assert lines[0].split(" ")[0] != lines[1].split(" ")[0]  # another occurrence, another key


def test_a_job_module_that_fails_to_import_stops_every_process_with_its_name_and_the_cause(
        engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "broken_jobs.py").write_text('raise RuntimeError("REPORTS_API_KEY is not set")\n')
    env = {**engine.env, "PYTHONPATH": str(tmp_path), "CHIME_JOB_MODULES": "broken_jobs", "PORT": str(free_port()),
           "WEB_CONCURRENCY": "1"}
    commands = {name: ["bash", "-c", "exec " + procfile_command(name)] for name in ("web", "worker", "scheduler")}
    commands["cli"] = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "tasks", "list"]
    started = {name: subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, start_new_session=True)
               for name, command in commands.items()}

    ended = {name: process.communicate(timeout=COMMAND_TIMEOUT_SECONDS) for name, process in started.items()}

    message = "CHIME_JOB_MODULES: cannot load job module 'broken_jobs': RuntimeError: REPORTS_API_KEY is not set"
    for name, process in started.items():
        stderr = ended[name][1]
        assert process.returncode != 0, f"{name} started: {stderr[-2000:]}"
        assert message in stderr, f"{name}: {stderr[-2000:]}"
    assert ended["cli"][1].rstrip().splitlines()[-1] == f"chime.job_modules.JobModuleError: {message}"
