"""`make run` end to end: embedded Redis (loopback only, password required), migrations, first admin,
web + worker + scheduler, an INTERVAL task that really runs, then SIGTERM leaves nothing behind and
make exits 0; a second run in a terminal works and Ctrl-C typed there makes make exit 0 too.

The state goes to a temporary instance folder (CHIME_INSTANCE_PATH); CHIME_EMBEDDED_REDIS=1
forces the embedded redis-server even when a Redis answers on 127.0.0.1:6379. `make -o install`
runs the `run` recipe with the existing venv (VENV=sys.prefix) without reinstalling anything.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import listening_addresses, reply_without_password

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
    pytest.mark.timeout(180),
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


def take_controlling_terminal() -> None:
    """In the child, after setsid(): its stdin (a pty) becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class MakeRun:
    """`make run` in its own session; its output is collected. With terminal=True it runs in a
    pseudo-terminal, as typed in a shell: make's group is the terminal's foreground, and typing
    Ctrl-C there makes the kernel send SIGINT to whatever group is in the foreground then."""

    def __init__(self, env: dict[str, str], terminal: bool = False) -> None:
        self.lines: list[str] = []
        command = ["make", "--no-print-directory", "-o", "install", "run", f"VENV={sys.prefix}"]
        self.terminal: int | None = None
        if terminal:
            self.terminal, child_end = os.openpty()
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=child_end,
                                            stdout=child_end, stderr=child_end, start_new_session=True,
                                            preexec_fn=take_controlling_terminal)
            os.close(child_end)
            chunks = iter(self._read_terminal, b"")
        else:
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            start_new_session=True)
            assert self.process.stdout is not None
            chunks = iter(self.process.stdout.readline, b"")
        self._reader = threading.Thread(target=self._read, args=(chunks,), daemon=True)
        self._reader.start()

    def _read_terminal(self) -> bytes:
        assert self.terminal is not None
        try:
            return os.read(self.terminal, 4096)
        except OSError:  # EIO: every process holding the terminal has exited
            return b""

    def _read(self, chunks: Iterator[bytes]) -> None:
        for chunk in chunks:
            text = chunk.decode(errors="replace").replace("\r\n", "\n")
            self.lines.append(text)
            print(text, end="", flush=True)

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
        """Type Ctrl-C in the terminal; return make's exit status."""
        assert self.terminal is not None
        os.write(self.terminal, b"\x03")
        return self.wait_for_exit("Ctrl-C")

    def sigterm_devrun(self) -> int:
        """SIGTERM to the process make runs (scheduler.devrun); return make's exit status."""
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
                                  capture_output=True, text=True, check=True).stdout.split()
        assert len(children) == 1, children
        os.kill(int(children[0]), signal.SIGTERM)
        return self.wait_for_exit("SIGTERM")

    def wait_for_exit(self, what: str) -> int:
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"make run still running {STOP_TIMEOUT_SECONDS}s after {what}:\n{self.output}")
        self._reader.join(timeout=5)
        if self.terminal is not None:
            os.close(self.terminal)
        return code

    def kill(self) -> None:
        """For a failed test: SIGINT (so devrun stops what it started), SIGKILL as a last resort."""
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


def wait_for_success(base: str, token: str, task_id: int, trigger: str | None = None) -> list[dict[str, Any]]:
    deadline = time.monotonic() + EXECUTION_TIMEOUT_SECONDS
    results: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        status, page = http("GET", f"{base}/api/tasks/{task_id}/logs/", token)
        assert status == 200, page
        results = page["results"]
        if any(r["status"] == "SUCCESS" and trigger in (None, r["trigger"]) for r in results):
            return results
        time.sleep(POLL_SECONDS)
    pytest.fail(f"no SUCCESS execution within {EXECUTION_TIMEOUT_SECONDS}s; log: {results}")


def run_banner_cli(output: str, command: str, env: dict[str, str]) -> str:
    """Run a flask command as the banner's CLI line says (same instance, database and Redis)."""
    match = re.search(r"CLI +(.+ --app wsgi) <command>", output)
    assert match, output
    result = subprocess.run(["bash", "-c", f"{match.group(1)} {command}"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def started_pids(output: str) -> set[int]:
    """The pids honcho reports for web, worker, scheduler and alerts, and the embedded redis-server's."""
    pids = {int(p) for p in re.findall(r"\b(?:web|worker|scheduler|alerts) started \(pid=(\d+)\)", output)}
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
    assert len(started) == 5, run.output
    assert not live & started, f"still running: {sorted(live & started)}"


def check_embedded_redis(output: str) -> int:
    """The embedded Redis listens on loopback only, refuses a client without the password, and the
    `rq info` command the banner prints works as printed; returns its port."""
    match = re.search(r"embedded \S+ \(pid \d+\) at (redis://:[^@\s]+@127\.0\.0\.1:(\d+)/0)", output)
    assert match, output
    url, redis_port = match.group(1), int(match.group(2))
    assert redis_port != 6379
    assert listening_addresses(redis_port) == {"127.0.0.1"}
    assert reply_without_password(redis_port).startswith(b"-NOAUTH")
    rq_info = re.search(r"queues +(\S+ info --url \S+)", output)
    assert rq_info and rq_info.group(1).endswith(f" info --url {url}"), output
    result = subprocess.run(rq_info.group(1).split(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "default" in result.stdout, result.stdout + result.stderr
    return redis_port


def start_and_check_health(env: dict[str, str], terminal: bool = False) -> tuple[MakeRun, str, int]:
    run = MakeRun(env, terminal)
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        run.wait_for_health(base)
        redis_port = check_embedded_redis(run.output)
    except BaseException:
        run.kill()
        raise
    assert f"http://127.0.0.1:{env['PORT']}/" in run.output
    return run, base, redis_port


def check_stopped(run: MakeRun, code: int, ports: list[int], tmp_path: Path) -> None:
    assert "Chime stopped; nothing left running" in run.output, run.output
    assert code == 0, f"make exited {code}:\n{run.output}"
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
        # `tasks run` queues on the embedded Redis only if the banner's command carries its URL
        run_banner_cli(run.output, f"tasks run {task['id']}", run_env)
        wait_for_success(base, token, task["id"], trigger="MANUAL")
    except BaseException:
        run.kill()
        raise
    check_stopped(run, run.sigterm_devrun(), [int(run_env["PORT"]), redis_port], tmp_path)
    secret_key = (tmp_path / "instance" / "secret_key").read_text()

    # same port: nothing was left on it
    again, base, redis_port = start_and_check_health(run_env, terminal=True)
    try:
        assert "An admin user already exists" in again.output
        assert "Created admin user" not in again.output
        assert (tmp_path / "instance" / "secret_key").read_text() == secret_key
        status, page = http("GET", f"{base}/api/tasks/{task['id']}/", token)
        assert status == 200, page
    except BaseException:
        again.kill()
        raise
    check_stopped(again, again.ctrl_c(), [int(run_env["PORT"]), redis_port], tmp_path)
