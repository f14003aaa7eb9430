"""Stopping a running run in the Procfile's worker process (issue 15): the signal reaches the job inside the
real `rq worker` process, a shell job's child process goes with it, and the same worker goes on working."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chime import run_control, services
from chime.extensions import db
from chime.unit_of_work import unit_of_work
from tests.engine.helpers import create, executions, in_seconds, run_now, with_status
from tests.engine.inprocess.test_cancel_and_stop import is_gone
from tests.engine_fixtures import Engine, wait_for

pytestmark = pytest.mark.engine


def shell_task(command: str) -> int:
    with unit_of_work():
        task = services.create_task({"name": "shell-sleep", "job": "shell", "args": {"command": command},
                                     "schedule_type": "ONE_TIME", "run_at": in_seconds(3600), "max_retries": 3,
                                     "timeout_seconds": 600}, allow_shell=True)
    task_id = task.id
    db.session.rollback()
    return task_id


def test_a_stopped_shell_run_ends_cancelled_its_child_is_gone_and_the_worker_takes_the_next_job(
        engine: Engine, engine_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_SHELL_JOBS", "true")  # here, to create the task; the worker gets it too
    worker = engine.start("worker", extra_env={"ALLOW_SHELL_JOBS": "true"})
    engine.start("scheduler")
    engine.wait_ready(engine_app.extensions["redis"])
    pid_file = tmp_path / "sleep.pid"
    task_id = shell_task(f"sleep 60 & echo $! > {pid_file}; wait")
    run_now(task_id)
    [run] = wait_for(lambda: with_status(task_id, "RUNNING"), 30, "the shell run to start", engine)
    child = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 30, "the child's pid", engine))

    with unit_of_work():
        run_control.request_stop(run.id)

    [stopped] = wait_for(lambda: with_status(task_id, "CANCELLED"), 30, "the run to be stopped", engine)
    assert (stopped.retry_at, stopped.message) == (None, "stopped by chime")
    wait_for(lambda: is_gone(child), 10, f"the shell's child {child} to be gone", engine)
    after = create(name="after", job="echo", args={"message": "next"}, schedule_type="ONE_TIME",
                   interval_seconds=None, run_at=in_seconds(3600))
    run_now(after)
    [done] = wait_for(lambda: with_status(after, "SUCCESS"), 30, "the next job", engine)
    assert done.worker == stopped.worker and engine.processes[worker].poll() is None
    assert [r.status for r in executions(task_id)] == ["CANCELLED"]
