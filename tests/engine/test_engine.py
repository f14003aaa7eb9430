"""The engine as processes: what needs real `rq worker` and scheduler processes on a real redis-server.

Two workers running at once (overlap), a scheduler killed with SIGKILL and its standby taking over,
and `rq info` reading a live worker. Everything else the engine does is tested in process, faster,
in tests/engine/inprocess/ (see tests/README.md).
"""
from __future__ import annotations

from typing import Any

import pytest
from rq import Worker

from tests.engine_fixtures import Engine, wait_for
from tests.engine.helpers import create, executions, overlapping, run_now, toggle, with_status

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_overlap_skip_never_runs_two_at_once(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"], workers=2)
    task_id = create(name="slowpoke", job="sleep", args={"seconds": 2.5}, interval_seconds=1)
    wait_for(lambda: len(with_status(task_id, "SUCCESS")) >= 2 and len(with_status(task_id, "SKIPPED")) >= 2,
             40, "two runs and two skips", engine)
    skipped_while_enabled = with_status(task_id, "SKIPPED")
    toggle(task_id)  # disabling may skip an overdue occurrence too, with its own message
    runs = [r for r in executions(task_id) if r.status in ("SUCCESS", "RUNNING")]
    assert overlapping(runs) == []
    assert {r.message for r in skipped_while_enabled} == {"previous run still running"}


def test_overlap_allow_runs_concurrently(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"], workers=2)
    task_id = create(name="parallel", job="sleep", args={"seconds": 2.5}, interval_seconds=1, overlap="ALLOW")
    wait_for(lambda: len(with_status(task_id, "SUCCESS")) >= 2, 40, "two runs", engine)
    toggle(task_id)
    assert overlapping(with_status(task_id, "SUCCESS")) != []
    assert with_status(task_id, "SKIPPED") == []


def test_standby_scheduler_takes_over_without_double_dispatch(engine: Engine, engine_app: Any) -> None:
    from chime.redis_keys import SCHEDULER_LOCK_KEY as LOCK_KEY

    connection = engine_app.extensions["redis"]
    engine.start("worker")
    first = engine.start("scheduler")
    wait_for(lambda: connection.get(LOCK_KEY), 15, "the first scheduler to take the lock", engine)
    second = engine.start("scheduler")
    task_id = create(name="ha", interval_seconds=1, misfire_grace_seconds=60)
    wait_for(lambda: len(with_status(task_id, "SUCCESS")) >= 2, 30, "runs under the first scheduler", engine)
    holder = connection.get(LOCK_KEY)
    engine.kill(first)
    before = len(executions(task_id))
    wait_for(lambda: connection.get(LOCK_KEY) not in (None, holder), 20, "the standby to take the lock", engine)
    wait_for(lambda: len(with_status(task_id, "SUCCESS")) >= before + 3, 30, "runs under the standby", engine)
    toggle(task_id)
    runs = executions(task_id)
    occurrences = [(r.scheduled_for, r.attempt) for r in runs]
    assert len(occurrences) == len(set(occurrences))
    assert "Duplicate delivery" not in engine.logs()
    assert second in engine.processes


def test_rq_info_shows_the_queues_and_the_worker(engine: Engine, engine_app: Any, engine_redis: Any) -> None:
    import subprocess
    import sys
    from pathlib import Path

    engine.start_engine(engine_app.extensions["redis"], schedulers=0)
    run_now(create(name="queued", enabled=False))
    rq = Path(sys.executable).parent / "rq"
    output = subprocess.run([str(rq), "info", "--url", engine_redis.url], capture_output=True, text=True,
                            timeout=30, check=True).stdout
    for queue in ("high", "default", "low"):
        assert queue in output
    assert "1 workers" in output or "1 worker" in output, output
    connection = engine_app.extensions["redis"]
    [worker] = Worker.all(connection=connection)
    assert 0 < connection.ttl(worker.key) <= 90  # a dead worker leaves rq info within 90 s
