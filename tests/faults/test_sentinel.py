"""Redis Sentinel: every process runs on a redis+sentinel:// REDIS_URL and rides out a failover.

Real processes only: a primary, a replica and three Sentinels (tests/sentinel.py), and the
Procfile's web, worker and scheduler pointed at the Sentinel URL, with passwords on both the data
nodes and the Sentinels. The primary is killed with SIGKILL while INTERVAL tasks run; the Sentinels
promote the replica and the same worker, scheduler and web processes carry on by themselves.
Replication is asynchronous, so the last writes before the kill may be lost (the reconciler's job):
this checks that tasks keep running after the failover, not that nothing was lost in its window.
"""
from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_TOKEN, AUTH
from tests.engine.helpers import create, with_status
from tests.engine_fixtures import ROOT, Engine, wait_for
from tests.sentinel import SentinelCluster
from tests.services import free_port
from scheduler.devrun import redis_answers, rq_info_command
from chime.timeutil import utcnow

pytestmark = [pytest.mark.engine,
              pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)]

EVERY_SECOND = {"job": "noop", "args": {}, "schedule_type": "INTERVAL", "interval_seconds": 1}


@pytest.fixture
def engine_redis(tmp_path: Path, redis_binary: str | None) -> Iterator[SentinelCluster]:
    """Replace the engine fixtures' private redis-server by a Sentinel deployment of the same binary
    (its .url is the redis+sentinel:// URL, so engine_app and the `engine` processes all use Sentinel)."""
    cluster = SentinelCluster(tmp_path, redis_binary)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def start_web(engine: Engine) -> str:
    """Start the Procfile's web entry (gunicorn) on a free port; return its base URL once it answers."""
    port = free_port()
    engine.start("web", extra_env={"PORT": str(port), "WEB_CONCURRENCY": "1", "API_TOKENS": API_TOKEN})
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_status(f"{base}/api/health/") is not None, 30, "gunicorn to answer", engine)
    return base


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except OSError as error:
        return getattr(error, "code", None)


def create_over_http(base: str, name: str) -> int:
    """Create an every-second task through gunicorn's API (the web process writes its occurrence to Redis)."""
    request = urllib.request.Request(f"{base}/api/tasks/", data=json.dumps({"name": name, **EVERY_SECOND}).encode(),
                                     headers={**AUTH, "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.loads(response.read())["id"]


def run_cli(engine: Engine, command: str) -> subprocess.CompletedProcess:
    """Run a command line in the project folder with the engine's environment (REDIS_URL is Sentinel's)."""
    return subprocess.run(["bash", "-c", command], cwd=ROOT, env=engine.env, capture_output=True, text=True,
                          timeout=60, check=False)


def succeeded_after(task_id: int, instant: Any) -> list[Any]:
    return [r for r in with_status(task_id, "SUCCESS") if r.scheduled_for > instant]


def test_every_process_runs_on_sentinel_and_tasks_keep_running_after_a_failover(
        engine: Engine, engine_app: Any, engine_redis: SentinelCluster) -> None:
    connection = engine_app.extensions["redis"]
    worker, scheduler = engine.start("worker"), engine.start("scheduler")
    base = start_web(engine)
    engine.wait_ready(connection)
    tasks = [create_over_http(base, "through-gunicorn"), create(name="in-process", **EVERY_SECOND),
             create(name="busy", **{**EVERY_SECOND, "job": "sleep", "args": {"seconds": 0.4}})]
    for task_id in tasks:
        wait_for(lambda t=task_id: with_status(t, "SUCCESS"), 30, f"task {task_id} to run", engine)

    engine_redis.kill_primary()
    engine_redis.wait_for_failover()
    promoted_at = utcnow()
    tasks.append(create_over_http(base, "after-failover"))
    for task_id in tasks:
        wait_for(lambda t=task_id: succeeded_after(t, promoted_at), 45,
                 f"task {task_id} to run again after the failover", engine)
    assert engine.processes[worker].poll() is None, "the worker quit instead of reconnecting"
    assert engine.processes[scheduler].poll() is None, "the scheduler quit instead of reconnecting"

    reconciled = run_cli(engine, "exec flask --app wsgi reconcile")
    assert reconciled.returncode == 0, reconciled.stderr
    assert isinstance(json.loads(reconciled.stdout), dict)
    info = run_cli(engine, rq_info_command("rq", engine.env["REDIS_URL"]))  # the hint make run prints
    assert info.returncode == 0, info.stderr
    assert "1 workers, 3 queues" in info.stdout
    assert redis_answers(engine.env["REDIS_URL"], 2.0)  # make run's check

