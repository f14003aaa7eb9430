"""A worker process's liveness beat (scheduler.liveness): one thread per process, not one per run, beats the
alive key of the run it executes and reads its stop key. A run beaten for is never found lost; a run shorter
than a beat writes no key. (A killed worker's run found lost: tests/faults/test_faults.py.) In process, real
Redis; the beat period is shortened so the tests do not wait for real beats."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import jobs.registry as registry
from chime.extensions import db
from chime.redis_keys import LIVENESS_SINCE_KEY, alive_key, stop_key
from chime.timeutil import utcnow
from scheduler.liveness import BEATER, Beater
from scheduler.reconcile import reconcile
from tests.engine.helpers import create, executions, in_seconds, run_now
from tests.engine.inprocess.engine import InProcessEngine
from tests.engine_fixtures import wait_for


def liveness_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "chime-liveness"]


@pytest.fixture
def quick_beats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BEATER, "beat_seconds", 0.05)


@pytest.fixture
def beaten_jobs(engine_app: Any, connection: Any) -> Iterator[list[dict[str, Any]]]:
    """`wait_for_beat`: a job that waits until its run's alive key is written, then notes who beat it;
    `judged_while_beaten`: the same, then a reconcile pass (in another thread, its own session) judges it
    half a minute later, as if it ran that long."""
    seen: list[dict[str, Any]] = []

    def wait_for_beat(context: registry.JobContext) -> None:
        value = wait_for(lambda: connection.get(alive_key(context.execution_id)), 10, "the run's first beat")
        seen.append({"execution_id": context.execution_id, "pid": int(value), "threads": liveness_threads()})

    def judged_while_beaten(context: registry.JobContext) -> None:
        wait_for_beat(context)
        connection.set(LIVENESS_SINCE_KEY, f"{connection.info('server')['run_id']}@{utcnow().timestamp() - 3600}")
        reports: list[dict[str, Any]] = []

        def other_worker() -> None:
            with engine_app.app_context():
                try:
                    reports.append(reconcile(connection, now=utcnow() + timedelta(seconds=30)))
                finally:
                    db.session.remove()

        thread = threading.Thread(target=other_worker)
        thread.start()
        thread.join()
        seen[-1]["report"] = reports[0]

    with registry.temporary(registry.make_spec(wait_for_beat, name="wait_for_beat"),
                            registry.make_spec(judged_while_beaten, name="judged_while_beaten")):
        yield seen


def one_time(name: str, job: str) -> int:
    return create(name=name, job=job, schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(3600))


def test_one_thread_per_process_beats_for_each_run_in_turn_and_their_keys_go_with_them(
        engine: InProcessEngine, connection: Any, quick_beats: None, beaten_jobs: list[dict[str, Any]]) -> None:
    first, second = one_time("first", "wait_for_beat"), one_time("second", "wait_for_beat")
    run_now(first)
    run_now(second)

    engine.work()

    assert [r.status for r in executions(first) + executions(second)] == ["SUCCESS", "SUCCESS"]
    assert [seen["execution_id"] for seen in beaten_jobs] == [executions(first)[0].id, executions(second)[0].id]
    assert {seen["pid"] for seen in beaten_jobs} == {os.getpid()}
    [beating] = beaten_jobs[0]["threads"]
    assert beaten_jobs[1]["threads"] == [beating] and liveness_threads() == [beating]
    assert connection.exists(*(alive_key(seen["execution_id"]) for seen in beaten_jobs)) == 0


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_a_run_beaten_for_is_not_found_lost_by_a_reconcile_pass_and_ends_recorded(
        engine: InProcessEngine, connection: Any, quick_beats: None, beaten_jobs: list[dict[str, Any]]) -> None:
    task_id = one_time("long", "judged_while_beaten")
    run_now(task_id)

    engine.work()

    [judged] = beaten_jobs
    assert judged["report"]["executions_lost"] == 0
    [run] = executions(task_id)
    assert (run.status, run.message) == ("SUCCESS", "")


def test_a_run_shorter_than_a_beat_writes_no_alive_key(connection: Any) -> None:
    beater = Beater(beat_seconds=3600)
    watched = beater.watch(connection, 424242)

    assert beater.unwatch(watched) is False
    assert connection.exists(alive_key(424242)) == 0


def test_each_beat_reads_the_stop_key_and_tells_who_asked(connection: Any) -> None:
    asked: list[str] = []
    beater = Beater(beat_seconds=0.05)
    connection.set(stop_key(434343), "ada")
    watched = beater.watch(connection, 434343, asked.append)

    wait_for(lambda: asked, 10, "a beat to read the stop key")
    assert beater.unwatch(watched) is True
    assert asked[0] == "ada" and connection.get(alive_key(434343)) is not None  # the caller deletes it
