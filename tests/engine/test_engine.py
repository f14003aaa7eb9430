"""The engine end to end: real redis-server, real `rq worker` and scheduler processes."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from rq import Worker

from chime import occurrence as occ
from tests.engine_fixtures import Engine, wait_for
from tests.engine.helpers import (create, executions, in_seconds, notifications, overlapping, run_now, task,
                                  toggle, with_status)

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_interval_task_runs_repeatedly_at_fixed_rate(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"])
    task_id = create(name="tick", job="echo", args={"message": "hi"}, interval_seconds=1)
    runs = wait_for(lambda: len(with_status(task_id, "SUCCESS")) >= 3 and with_status(task_id, "SUCCESS"),
                    30, "three successful runs", engine)
    scheduled = [r.scheduled_for for r in runs[:3]]
    assert [b - a for a, b in zip(scheduled, scheduled[1:])] == [timedelta(seconds=1)] * 2
    assert runs[0].result == {"message": "hi"} and runs[0].trigger == "SCHEDULE" and runs[0].attempt == 1
    assert all(r.worker and r.job_id and r.duration_ms is not None for r in runs)
    assert any(n.level == "SUCCESS" for n in notifications(task_id))


def test_one_time_task_runs_exactly_once(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"])
    task_id = create(name="once", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(1))
    wait_for(lambda: with_status(task_id, "SUCCESS"), 30, "the one-time run", engine)
    connection = engine_app.extensions["redis"]
    assert occ.pending_job_id(connection, task_id) is None
    assert [j for j in connection.zrange(occ.SCHEDULED_KEY, 0, -1) if j.startswith(b"chime-%d-" % task_id)] == []
    assert len(executions(task_id)) == 1
    wait_for(lambda: task(task_id).next_run_at is None, 5, "next_run_at to be cleared", engine)
    assert task(task_id).status == "SUCCESS"


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_failing_task_walks_through_its_retries_to_failed(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"])
    task_id = create(name="broken", job="fail", args={"message": "boom"}, schedule_type="ONE_TIME",
                     interval_seconds=None, run_at=in_seconds(0), max_retries=3, retry_backoff_seconds=1)
    wait_for(lambda: with_status(task_id, "FAILED"), 40, "the final failure", engine)
    runs = executions(task_id)
    assert [(r.attempt, r.status) for r in runs] == [(1, "RETRYING"), (2, "RETRYING"), (3, "RETRYING"), (4, "FAILED")]
    delays = [round((r.retry_at - r.finished_at).total_seconds()) for r in runs[:3]]
    assert delays == [1, 2, 4]
    assert all(later.started_at >= earlier.retry_at for earlier, later in zip(runs, runs[1:]))
    assert [r.trigger for r in runs] == ["SCHEDULE", "RETRY", "RETRY", "RETRY"]
    assert "boom" in runs[-1].message
    levels = [n.level for n in notifications(task_id)]
    assert levels.count("WARNING") == 3 and levels.count("ERROR") == 1


def test_fail_once_succeeds_on_the_second_attempt(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"])
    task_id = create(name="flaky", job="fail", args={"times": 1}, schedule_type="ONE_TIME",
                     interval_seconds=None, run_at=in_seconds(0), retry_backoff_seconds=1)
    wait_for(lambda: with_status(task_id, "SUCCESS"), 30, "the second attempt", engine)
    assert [(r.attempt, r.status) for r in executions(task_id)] == [(1, "RETRYING"), (2, "SUCCESS")]


def test_timeout_is_a_failure_that_names_the_limit(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"])
    task_id = create(name="slow", job="sleep", args={"seconds": 5}, schedule_type="ONE_TIME",
                     interval_seconds=None, run_at=in_seconds(0), timeout_seconds=1, max_retries=0)
    run = wait_for(lambda: with_status(task_id, "FAILED"), 30, "the timeout", engine)[0]
    assert run.message == "timed out after 1 s"


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_child_of_a_failed_parent_is_skipped_and_not_retried(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"])
    parent = create(name="parent", job="fail", schedule_type="ONE_TIME", interval_seconds=None,
                    run_at=in_seconds(0), max_retries=0)
    wait_for(lambda: with_status(parent, "FAILED"), 30, "the parent's failure", engine)
    child = create(name="child", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(0),
                   depends_on=[parent])
    run = wait_for(lambda: with_status(child, "SKIPPED"), 30, "the child's skip", engine)[0]
    assert "'parent'" in run.message and "FAILED" in run.message
    assert len(executions(child)) == 1


def test_child_of_a_successful_parent_runs(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"])
    parent = create(name="parent", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(0))
    wait_for(lambda: with_status(parent, "SUCCESS"), 30, "the parent's success", engine)
    child = create(name="child", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(0),
                   depends_on=[parent])
    wait_for(lambda: with_status(child, "SUCCESS"), 30, "the child's run", engine)


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_overlap_skip_never_runs_two_at_once(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"], workers=2)
    task_id = create(name="slowpoke", job="sleep", args={"seconds": 2.5}, interval_seconds=1)
    wait_for(lambda: len(with_status(task_id, "SUCCESS")) >= 2 and len(with_status(task_id, "SKIPPED")) >= 2,
             40, "two runs and two skips", engine)
    toggle(task_id)
    runs = [r for r in executions(task_id) if r.status in ("SUCCESS", "RUNNING")]
    assert overlapping(runs) == []
    assert {r.message for r in with_status(task_id, "SKIPPED")} == {"previous run still running"}


def test_overlap_allow_runs_concurrently(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"], workers=2)
    task_id = create(name="parallel", job="sleep", args={"seconds": 2.5}, interval_seconds=1, overlap="ALLOW")
    wait_for(lambda: len(with_status(task_id, "SUCCESS")) >= 2, 40, "two runs", engine)
    toggle(task_id)
    assert overlapping(with_status(task_id, "SUCCESS")) != []
    assert with_status(task_id, "SKIPPED") == []


def test_disabling_stops_runs(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"])
    task_id = create(name="stopper", interval_seconds=1)
    wait_for(lambda: with_status(task_id, "SUCCESS"), 30, "a first run", engine)
    toggle(task_id)
    settled = len(executions(task_id))
    connection = engine_app.extensions["redis"]
    assert occ.pending_job_id(connection, task_id) is None
    wait_for(lambda: not connection.llen("rq:queue:default"), 10, "the queue to drain", engine)
    import time

    time.sleep(2.5)
    assert len(executions(task_id)) <= settled + 1


def test_run_now_runs_a_disabled_task_with_trigger_manual(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"], schedulers=0)
    task_id = create(name="manual", job="echo", args={"message": "now"}, enabled=False)
    run_now(task_id)
    run = wait_for(lambda: with_status(task_id, "SUCCESS"), 30, "the manual run", engine)[0]
    assert run.trigger == "MANUAL" and run.result == {"message": "now"}


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
