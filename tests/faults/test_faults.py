"""Fault injection: real redis-server, real worker and scheduler processes, SQLite and Postgres.

Each test states the fault, waits for recovery, and checks that every occurrence due in the
window has exactly one final execution and that nothing ran twice. A fault that needs no process
(a jump of the wall clock) is tested in process: tests/engine/inprocess/test_schedules.py.
"""
from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from typing import Any

import pytest
from rq import Worker

from scheduler import health
from chime import occurrence as occ
from scheduler.reconcile import reconcile
from tests.conftest import AUTH
from tests.engine.helpers import create, executions, in_seconds, task, toggle, with_status
from tests.engine.inprocess.engine import scheduled_occurrences
from tests.engine_fixtures import Engine, wait_for
from chime.extensions import db
from chime.models import Task
from chime.timeutil import utcnow

pytestmark = [pytest.mark.engine,
              pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)]

FINAL = ("SUCCESS", "FAILED", "SKIPPED")


def redis_of(app: Any) -> Any:
    return app.extensions["redis"]


def reconcile_now(app: Any) -> dict[str, Any]:
    report = reconcile(redis_of(app))
    db.session.rollback()
    return report


def assert_no_occurrence_ran_twice(task_id: int) -> None:
    runs = executions(task_id)
    keys = [(r.scheduled_for, r.attempt) for r in runs]
    assert len(keys) == len(set(keys)), keys


def test_worker_killed_mid_job_is_failed_as_lost_and_retried_elsewhere(engine: Engine, engine_app: Any) -> None:
    connection = redis_of(engine_app)
    doomed = engine.start("worker")
    engine.start("scheduler")
    engine.wait_ready(connection, workers=1)
    task_id = create(name="long", job="sleep", args={"seconds": 6}, schedule_type="ONE_TIME",
                     interval_seconds=None, run_at=in_seconds(0), retry_backoff_seconds=1)
    running = wait_for(lambda: with_status(task_id, "RUNNING"), 30, "the job to start", engine)[0]
    job_pid = int(wait_for(lambda: connection.get(occ.ALIVE_KEY.format(execution_id=running.id)), 5,
                           "the running job's liveness key", engine))
    engine.kill(doomed)
    with contextlib.suppress(ProcessLookupError):
        os.kill(job_pid, signal.SIGKILL)  # the process running the job, should it live apart from the worker
    survivor = engine.start("worker")
    engine.wait_ready(connection, workers=1)
    wait_for(lambda: reconcile_now(engine_app).get("executions_lost"), 40, "the reconciler to see the lost worker", engine)
    wait_for(lambda: with_status(task_id, "SUCCESS"), 40, "the retry to succeed", engine)
    first, second = executions(task_id)
    assert (first.attempt, first.status, first.message) == (1, "FAILED", "worker lost")
    assert (second.attempt, second.status, second.trigger) == (2, "SUCCESS", "RETRY")
    assert second.worker != first.worker and survivor in engine.processes


def test_flushall_is_repaired_by_one_reconcile_pass(engine: Engine, engine_app: Any) -> None:
    connection = redis_of(engine_app)
    engine.start("worker")
    scheduler = engine.start("scheduler")
    engine.wait_ready(connection)
    ids = {"enabled": [], "disabled": []}
    for n in range(50):
        kind = ("INTERVAL", "CRON", "ONE_TIME")[n % 3]
        fields: dict[str, Any] = {"name": f"t{n}", "schedule_type": kind, "interval_seconds": None}
        fields.update({"INTERVAL": {"interval_seconds": 3600}, "CRON": {"cron": "0 3 * * *"},
                       "ONE_TIME": {"run_at": in_seconds(3600)}}[kind])
        enabled = n % 10 != 0
        ids["enabled" if enabled else "disabled"].append(create(enabled=enabled, **fields))
    catch_up = create(name="catch-up", interval_seconds=2, misfire_grace_seconds=300)
    too_late = create(name="too-late", interval_seconds=2, misfire_grace_seconds=0)
    wait_for(lambda: with_status(catch_up, "SUCCESS"), 20, "a first run", engine)
    engine.stop(scheduler)  # with no scheduler, the periodic reconcile cannot repair it before we look
    connection.flushall()
    time.sleep(4.5)  # let several occurrences of the 2 s tasks be missed
    reconcile_now(engine_app)
    counts = scheduled_occurrences(connection)
    assert all(counts[t] == 1 for t in ids["enabled"]), counts
    assert all(counts[t] == 0 for t in ids["disabled"])
    assert all(occ.pending_job_id(connection, t) for t in ids["enabled"])
    engine.start("scheduler")
    recovered = wait_for(lambda: [r for r in executions(catch_up) if r.trigger == "RECOVERY"], 20,
                         "the coalesced catch-up run", engine)
    assert recovered[0].status in ("RUNNING", "SUCCESS")
    missed = wait_for(lambda: [r for r in with_status(too_late, "SKIPPED") if r.message.startswith("missed")], 20,
                      "the missed record", engine)
    assert missed
    wait_for(lambda: task(catch_up).next_run_at > utcnow(), 5, "the next run time to be saved", engine)


def test_scheduler_killed_right_after_a_move_loses_nothing(engine: Engine, engine_app: Any) -> None:
    connection = redis_of(engine_app)
    engine.start("worker")
    engine.wait_ready(connection, workers=1, schedulers=0)
    crashing = engine.start("scheduler", extra_env={"CHIME_FAULT_INJECT": "after_move"})
    task_id = create(name="steady", interval_seconds=1)
    wait_for(lambda: engine.processes[crashing].poll() is not None, 30, "the injected crash", engine)
    assert engine.processes[crashing].returncode == 17
    assert occ.pending_job_id(connection, task_id) is not None
    engine.start("scheduler")
    wait_for(lambda: len(with_status(task_id, "SUCCESS")) >= 4, 30, "runs after the restart", engine)
    toggle(task_id)
    assert_no_occurrence_ran_twice(task_id)
    assert "Duplicate delivery" not in engine.logs()


def test_redis_restarted_empty_is_survived(engine: Engine, engine_app: Any, engine_redis: Any) -> None:
    connection = redis_of(engine_app)
    client = engine_app.test_client()
    engine.start_engine(connection)
    task_id = create(name="heartbeat", interval_seconds=1)
    wait_for(lambda: with_status(task_id, "SUCCESS"), 20, "a first run", engine)
    engine_redis.stop()
    health_down = client.get("/api/health/")
    created = client.post("/api/tasks/", json={"name": "born-in-outage", "job": "noop", "schedule_type": "INTERVAL",
                                               "interval_seconds": 1}, headers=AUTH)
    time.sleep(10)
    engine_redis.start()
    assert health_down.status_code == 503 and health_down.get_json()["redis"] != "ok"
    assert created.status_code == 201
    assert client.get("/api/tasks/", headers=AUTH).get_json()["count"] == 2
    before = len(executions(task_id))
    wait_for(lambda: len(Worker.all(connection=connection)) >= 1, 60, "the worker to register again", engine)
    wait_for(lambda: health.scheduler_state(connection, now_epoch=time.time())["alive"], 30, "the scheduler", engine)
    wait_for(lambda: len(executions(task_id)) >= before + 2, 60, "runs after the restart", engine)
    newborn = created.get_json()["id"]
    wait_for(lambda: with_status(newborn, "SUCCESS"), 60, "the task created during the outage to run", engine)
    assert client.get("/api/health/").status_code == 200
    assert_no_occurrence_ran_twice(task_id)


def test_random_changes_while_running_keep_one_occurrence_per_enabled_task(engine: Engine, engine_app: Any) -> None:
    connection = redis_of(engine_app)
    client = engine_app.test_client()
    engine.start_engine(connection)
    rng = random.Random(20261122)
    live: list[int] = []
    for step in range(80):
        action = rng.choice(["create", "create", "edit", "toggle", "delete"]) if live else "create"
        if action == "create" and len(live) < 20:
            body = rng.choice([{"schedule_type": "INTERVAL", "interval_seconds": rng.randint(1, 5)},
                               {"schedule_type": "CRON", "cron": "* * * * *"},
                               {"schedule_type": "ONE_TIME", "run_at": in_seconds(3600)}])
            response = client.post("/api/tasks/", json={"name": f"walk-{step}", "job": "noop", **body}, headers=AUTH)
            assert response.status_code == 201
            live.append(response.get_json()["id"])
        elif action == "edit" and live:
            target = rng.choice(live)
            response = client.patch(f"/api/tasks/{target}/", json={"interval_seconds": rng.randint(1, 4)}
                                    if rng.random() < 0.5 else {"description": f"edit {step}"}, headers=AUTH)
            assert response.status_code in (200, 400)
        elif action == "toggle" and live:
            assert client.post(f"/api/tasks/{rng.choice(live)}/toggle/", headers=AUTH).status_code == 200
        elif action == "delete" and live:
            target = live.pop(rng.randrange(len(live)))
            assert client.delete(f"/api/tasks/{target}/", headers=AUTH).status_code == 204
        time.sleep(rng.uniform(0, 0.1))
    time.sleep(1.5)
    enabled = {t.id for t in db.session.scalars(db.select(Task).where(Task.enabled.is_(True)))}
    db.session.rollback()
    counts = scheduled_occurrences(connection)
    assert {t: counts[t] for t in enabled} == {t: 1 for t in enabled}
    assert set(counts) == enabled
