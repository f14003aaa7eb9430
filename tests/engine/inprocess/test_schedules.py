"""Schedules run in the engine, in process: interval and one-time tasks, disabling, run now, clock jumps."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chime import occurrence as occ
from chime.timeutil import utcnow
from scheduler.dispatch import ChimeScheduler
from tests.engine.helpers import create, executions, in_seconds, notifications, run_now, task, toggle, with_status
from tests.engine.inprocess.engine import InProcessEngine, scheduled_occurrences


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_interval_task_runs_repeatedly_at_fixed_rate(engine: InProcessEngine) -> None:
    task_id = create(name="tick", job="echo", args={"message": "hi"}, interval_seconds=1)
    for _ in range(3):
        engine.run_next()
    runs = with_status(task_id, "SUCCESS")
    assert len(runs) == 3
    scheduled = [r.scheduled_for for r in runs[:3]]
    assert [b - a for a, b in zip(scheduled, scheduled[1:])] == [timedelta(seconds=1)] * 2
    assert runs[0].result == {"message": "hi"} and runs[0].trigger == "SCHEDULE" and runs[0].attempt == 1
    assert all(r.worker and r.job_id and r.duration_ms is not None for r in runs)
    assert any(n.level == "SUCCESS" for n in notifications(task_id))


def test_one_time_task_runs_exactly_once(engine: InProcessEngine, connection: Any) -> None:
    task_id = create(name="once", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(1))
    engine.run_next()
    engine.dispatch(utcnow() + timedelta(days=1))
    engine.work()
    assert with_status(task_id, "SUCCESS")
    assert occ.pending_job_id(connection, task_id) is None
    assert [j for j in connection.zrange(occ.SCHEDULED_KEY, 0, -1) if j.startswith(b"chime-%d-" % task_id)] == []
    assert len(executions(task_id)) == 1
    assert task(task_id).next_run_at is None
    assert task(task_id).status == "SUCCESS"


def test_disabling_stops_runs(engine: InProcessEngine, connection: Any) -> None:
    task_id = create(name="stopper", interval_seconds=1)
    engine.run_next()
    assert with_status(task_id, "SUCCESS")
    toggle(task_id)
    settled = len(executions(task_id))
    assert occ.pending_job_id(connection, task_id) is None
    engine.work()
    assert not connection.llen("rq:queue:default")
    engine.dispatch(utcnow() + timedelta(seconds=2.5))
    engine.work()
    assert len(executions(task_id)) == settled  # at most settled + 1 with processes, where a run may be in flight


def test_run_now_runs_a_disabled_task_with_trigger_manual(engine: InProcessEngine) -> None:
    task_id = create(name="manual", job="echo", args={"message": "now"}, enabled=False)
    run_now(task_id)
    engine.work()
    [run] = with_status(task_id, "SUCCESS")
    assert run.trigger == "MANUAL" and run.result == {"message": "now"}


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_clock_jumps_cause_no_burst_of_runs(engine_app: Any, connection: Any) -> None:
    coalesced = create(name="minutely", interval_seconds=60, overlap="ALLOW")
    skipped = create(name="strict", interval_seconds=60, misfire_grace_seconds=10)
    scheduler = ChimeScheduler(connection, engine_app, name="clock-test")
    due_at = max(task(coalesced).next_run_at, task(skipped).next_run_at)
    queued = lambda: connection.lrange("rq:queue:default", 0, -1)  # noqa: E731
    assert scheduler.dispatch_due(due_at + timedelta(milliseconds=5)) == 2 and len(queued()) == 2
    jumped = due_at + timedelta(days=1, seconds=30)  # the wall clock jumps a day ahead
    assert scheduler.dispatch_due(jumped) == 2
    assert len(queued()) == 3  # one coalesced catch-up run, not 1,440
    catch_up = occ.parse_job_id(queued()[-1].decode())
    assert catch_up.task_id == coalesced and jumped - timedelta(seconds=60) < catch_up.scheduled_for <= jumped
    missed = with_status(skipped, "SKIPPED")
    assert len(missed) == 1 and missed[0].message.startswith("missed: at least 1000 occurrence(s)")
    assert task(coalesced).next_run_at > jumped and task(skipped).next_run_at > jumped
    assert scheduler.dispatch_due(due_at + timedelta(seconds=30)) == 0  # and back: nothing is due twice
    next_due_at = max(task(coalesced).next_run_at, task(skipped).next_run_at)
    assert scheduler.dispatch_due(next_due_at) == 2 and len(queued()) == 4
    assert scheduled_occurrences(connection) == {coalesced: 1, skipped: 1}
