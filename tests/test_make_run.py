"""`make run` end to end: embedded Redis, migrations, first admin, web + worker + scheduler,
an INTERVAL task that really runs, then Ctrl-C leaves nothing behind and a second run works.

The state goes to a temporary instance folder (CHIME_INSTANCE_PATH); CHIME_EMBEDDED_REDIS=1
forces the embedded redis-server even when a Redis answers on 127.0.0.1:6379. `make -o install`
runs the `run` recipe with the existing venv (VENV=sys.prefix) without reinstalling anything.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 60
EXECUTION_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 20
HTTP_TIMEOUT_SECONDS = 5
POLL_SECONDS = 0.25
ENV_TO_DROP = ("REDIS_URL", "DATABASE_URL", "SECRET_KEY", "ADMIN_PASSWORD", "ADMIN_USERNAME",
               "API_TOKENS", "PORT", "CHIME_ENV", "FLASK_APP")

pytestmark = [
    pytest.mark.engine,
    pytest.mark.timeout(110),
    pytest.mark.skipif(shutil.which("make") is None or shutil.which("ps") is None,
                       reason="needs make and ps"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def processes_mentioning(text: str) -> list[str]:
    """Live (non-zombie) processes whose command line contains `text`."""
    output = subprocess.run(["ps", "-A", "-o", "stat=,pid=,args="], capture_output=True,
                            text=True, check=True).stdout
    return [line for line in output.splitlines() if text in line and not line.lstrip().startswith("Z")]


class MakeRun:
    """`make run` in its own session, as a terminal would run it; its output is collected."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "-o", "install", "run", f"VENV={sys.prefix}"],
            cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            print("    make run>", line, end="", flush=True)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_health(self, base: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"make run exited early:\n{self.output}"
            try:
                if http("GET", f"{base}/api/health/")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(POLL_SECONDS)
        pytest.fail(f"/api/health/ did not answer 200 within {START_TIMEOUT_SECONDS}s:\n{self.output}")

    def ctrl_c(self) -> int:
        """SIGINT to the whole process group (what Ctrl-C does); return make's exit status."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"make run still running {STOP_TIMEOUT_SECONDS}s after Ctrl-C:\n{self.output}")
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """For a failed test: Ctrl-C (so devrun stops what it started), SIGKILL as a last resort."""
        for signum in (signal.SIGINT, signal.SIGKILL):
            if self.process.poll() is not None:
                return
            try:
                os.killpg(self.process.pid, signum)
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


@pytest.fixture
def run_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_TO_DROP}
    env.update(CHIME_INSTANCE_PATH=str(tmp_path / "instance"), CHIME_EMBEDDED_REDIS="1",
               PORT=str(free_port()))
    yield env
    for line in processes_mentioning(str(tmp_path)):
        pid = int(line.split()[1])
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def create_token(env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "create-token", "--name", "make-run"],
                            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def wait_for_success(base: str, token: str, task_id: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + EXECUTION_TIMEOUT_SECONDS
    results: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        status, page = http("GET", f"{base}/api/tasks/{task_id}/logs/", token)
        assert status == 200, page
        results = page["results"]
        if any(r["status"] == "SUCCESS" for r in results):
            return results
        time.sleep(POLL_SECONDS)
    pytest.fail(f"no SUCCESS execution within {EXECUTION_TIMEOUT_SECONDS}s; log: {results}")


def started_pids(output: str) -> set[int]:
    """The pids honcho reports for web, worker and scheduler, and the embedded redis-server's."""
    pids = {int(p) for p in re.findall(r"\b(?:web|worker|scheduler) started \(pid=(\d+)\)", output)}
    pids |= {int(p) for p in re.findall(r"Redis: embedded \S+ \(pid (\d+)\)", output)}
    return pids


def assert_nothing_left(run: MakeRun, ports: list[int], tmp_path: Path) -> None:
    with pytest.raises(ProcessLookupError):
        os.killpg(run.process.pid, 0)  # nothing left in make's process group
    for port in ports:
        assert not accepts_connections(port), f"port {port} still accepts connections"
    left = processes_mentioning(str(tmp_path))
    assert not left, f"processes left behind: {left}"
    table = subprocess.run(["ps", "-A", "-o", "pid=,stat="], capture_output=True, text=True).stdout
    live = {int(pid) for pid, stat in (line.split() for line in table.splitlines()) if not stat.startswith("Z")}
    started = started_pids(run.output)
    assert len(started) == 4, run.output
    assert not live & started, f"still running: {sorted(live & started)}"


def start_and_check_health(env: dict[str, str]) -> tuple[MakeRun, str, int]:
    run = MakeRun(env)
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        run.wait_for_health(base)
    except BaseException:
        run.kill()
        raise
    match = re.search(r"embedded \S+ \(pid \d+\) at redis://127\.0\.0\.1:(\d+)/0", run.output)
    assert match, run.output
    redis_port = int(match.group(1))
    assert redis_port != 6379
    assert f"rq info --url redis://127.0.0.1:{redis_port}/0" in run.output
    assert f"http://127.0.0.1:{env['PORT']}/" in run.output
    return run, base, redis_port


def stop_and_check(run: MakeRun, ports: list[int], tmp_path: Path) -> None:
    run.ctrl_c()
    assert "Chime stopped; nothing left running" in run.output, run.output
    assert_nothing_left(run, ports, tmp_path)


def test_make_run_serves_runs_tasks_and_stops_cleanly(run_env: dict[str, str], tmp_path: Path) -> None:
    run, base, redis_port = start_and_check_health(run_env)
    try:
        assert re.search(r"Created admin user 'admin' with password '[^']+' \(shown once\)", run.output)
        token = create_token(run_env)
        status, task = http("POST", f"{base}/api/tasks/", token, {
            "name": "make-run-echo", "job": "echo", "args": {"message": "hello"},
            "schedule_type": "INTERVAL", "interval_seconds": 1,
        })
        assert status == 201, task
        wait_for_success(base, token, task["id"])
    except BaseException:
        run.kill()
        raise
    stop_and_check(run, [int(run_env["PORT"]), redis_port], tmp_path)
    secret_key = (tmp_path / "instance" / "secret_key").read_text()

    again, base, redis_port = start_and_check_health(run_env)  # same port: nothing was left on it
    try:
        assert "An admin user already exists" in again.output
        assert "Created admin user" not in again.output
        assert (tmp_path / "instance" / "secret_key").read_text() == secret_key
        status, page = http("GET", f"{base}/api/tasks/{task['id']}/", token)
        assert status == 200, page
    except BaseException:
        again.kill()
        raise
    stop_and_check(again, [int(run_env["PORT"]), redis_port], tmp_path)
