"""Run controls in the engine, in process (real Redis, the Procfile's worker class in burst mode): a failed
run's traceback, a failed run retried now, a run now with its own arguments, and a run Chime records as
failed ending in RQ's failed registry too (what `rq info` and rq-dashboard count)."""
from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from rq.cli import main as rq_cli
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from chime import occurrence as occ
from chime import services
from chime.extensions import db
from chime.lifecycle import MAX_TRACEBACK_CHARS
from chime.models import Execution
from scheduler.boundary import PlainPickleSerializer
from tests.engine.helpers import create, executions, in_seconds, task
from tests.engine.inprocess.engine import InProcessEngine

ONCE_NOW = {"schedule_type": "ONE_TIME", "interval_seconds": None}


def failed_in_rq(connection: Any, queue: str = "default") -> list[str]:
    return FailedJobRegistry(queue, connection=connection).get_job_ids()


def finished_in_rq(connection: Any, queue: str = "default") -> list[str]:
    return FinishedJobRegistry(queue, connection=connection).get_job_ids()


def run_now(task_id: int, args: Any = None) -> str:
    job_id = services.run_task_now(services.get_task(task_id), args=args)
    db.session.rollback()
    return job_id


def retry(execution_id: int) -> str:
    job_id = services.retry_run(services.get_row(Execution, execution_id))
    db.session.rollback()
    return job_id


# -- the traceback ---------------------------------------------------------------------------------

def test_a_job_that_raised_keeps_its_own_traceback_without_the_executors_frames(engine: InProcessEngine) -> None:
    task_id = create(name="broken", job="fail", args={"message": "boom"}, run_at=in_seconds(0), max_retries=0,
                     **ONCE_NOW)
    engine.run_next()
    [run] = executions(task_id)
    assert run.status == "FAILED"
    assert run.traceback.startswith("Traceback (most recent call last):")
    assert ", in fail\n" in run.traceback
    assert run.traceback.rstrip().endswith("RuntimeError: boom")
    assert "executor.py" not in run.traceback and "registry.py" not in run.traceback


def test_a_run_that_timed_out_keeps_the_traceback_of_where_its_job_was(engine: InProcessEngine) -> None:
    task_id = create(name="slow", job="sleep", args={"seconds": 5}, run_at=in_seconds(0), timeout_seconds=1,
                     max_retries=0, **ONCE_NOW)
    engine.run_next()
    [run] = executions(task_id)
    assert run.message == "timed out after 1 s"
    assert ", in sleep\n" in run.traceback
    assert "executor.py" not in run.traceback


def test_a_huge_traceback_is_cut_to_its_end_and_says_so(engine: InProcessEngine) -> None:
    message = "start-" + "x" * 40_000 + "-end"
    task_id = create(name="loud", job="fail", args={"message": message}, run_at=in_seconds(0), max_retries=0,
                     **ONCE_NOW)
    engine.run_next()
    [run] = executions(task_id)
    assert len(run.traceback) <= 16 * 1024 == MAX_TRACEBACK_CHARS
    assert run.traceback.startswith("[... traceback cut")
    assert run.traceback.rstrip().endswith("-end")
    assert "start-" not in run.traceback


def test_rqs_failed_registry_keeps_the_message_and_only_the_end_of_a_huge_traceback(engine: InProcessEngine) -> None:
    message = "start-" + "x" * 40_000 + "-end"
    task_id = create(name="loud", job="fail", args={"message": message}, run_at=in_seconds(0), max_retries=0,
                     **ONCE_NOW)
    engine.run_next()
    [run] = executions(task_id)
    exc_string = Job.fetch(run.job_id, connection=engine.connection,
                           serializer=PlainPickleSerializer).latest_result().exc_string
    assert f"execution {run.id} of task {task_id} failed: RuntimeError: start-" in exc_string
    assert exc_string.rstrip().endswith("-end")
    assert len(exc_string) < 4000 + 2048 + 2000  # the message (4,000 at most), 2 KiB of traceback, RQ's frames


def test_a_successful_run_has_no_traceback(engine: InProcessEngine) -> None:
    task_id = create(name="fine", job="noop", run_at=in_seconds(0), **ONCE_NOW)
    engine.run_next()
    [run] = executions(task_id)
    assert (run.status, run.traceback) == ("SUCCESS", None)


# -- RQ's own tools see Chime's failures -----------------------------------------------------------

def test_a_run_failed_for_good_is_in_rqs_failed_registry_and_rq_info_counts_it(
        engine: InProcessEngine, engine_app: Any) -> None:
    task_id = create(name="broken", job="fail", args={"message": "boom"}, run_at=in_seconds(0), max_retries=0,
                     **ONCE_NOW)
    engine.run_next()
    [run] = executions(task_id)
    assert run.status == "FAILED"
    assert failed_in_rq(engine.connection) == [run.job_id]
    info = CliRunner().invoke(rq_cli, ["info", "--raw", "--only-queues", "--url", engine_app.config["REDIS_URL"],
                                       "default"])
    assert info.exit_code == 0, info.output
    assert "0 finished, 1 failed" in info.output


def test_rq_keeps_the_jobs_error_and_does_not_retry_the_job_itself(engine: InProcessEngine) -> None:
    task_id = create(name="broken", job="fail", args={"message": "boom"}, run_at=in_seconds(0), max_retries=0,
                     **ONCE_NOW)
    engine.run_next()
    engine.work()  # nothing is queued again by RQ
    [run] = executions(task_id)
    assert failed_in_rq(engine.connection) == [run.job_id]
    exc_string = Job.fetch(run.job_id, connection=engine.connection,
                           serializer=PlainPickleSerializer).latest_result().exc_string
    assert f"execution {run.id} of task {task_id} failed: RuntimeError: boom" in exc_string
    assert ", in fail\n" in exc_string


def test_attempts_left_to_retry_end_finished_in_rq_and_only_the_last_failed(engine: InProcessEngine) -> None:
    task_id = create(name="flaky", job="fail", args={"message": "boom"}, run_at=in_seconds(0), max_retries=1,
                     retry_backoff_seconds=1, **ONCE_NOW)
    engine.run_next()
    engine.run_next()  # the retry, at its retry_at
    first, last = executions(task_id)
    assert [(first.attempt, first.status), (last.attempt, last.status)] == [(1, "RETRYING"), (2, "FAILED")]
    assert finished_in_rq(engine.connection) == [first.job_id]
    assert failed_in_rq(engine.connection) == [last.job_id]


def test_a_run_that_succeeded_stays_finished_in_rq(engine: InProcessEngine) -> None:
    task_id = create(name="fine", job="echo", args={"message": "hi"}, run_at=in_seconds(0), **ONCE_NOW)
    engine.run_next()
    [run] = executions(task_id)
    assert run.status == "SUCCESS"
    assert finished_in_rq(engine.connection) == [run.job_id]
    assert failed_in_rq(engine.connection) == []


# -- retry a failed run now ------------------------------------------------------------------------

def test_a_failed_run_retried_now_runs_as_the_next_attempt_of_the_same_occurrence(engine: InProcessEngine) -> None:
    task_id = create(name="flaky", job="fail", args={"times": 1}, run_at=in_seconds(0), max_retries=0, **ONCE_NOW)
    engine.run_next()
    [failed] = executions(task_id)
    retry(failed.id)
    engine.work()
    runs = executions(task_id)
    assert [(r.attempt, r.trigger, r.status) for r in runs] == [(1, "SCHEDULE", "FAILED"), (2, "RETRY", "SUCCESS")]
    assert runs[1].scheduled_for == failed.scheduled_for


def test_a_retried_run_that_fails_again_is_failed_once_with_no_retry_by_policy(engine: InProcessEngine) -> None:
    task_id = create(name="broken", job="fail", run_at=in_seconds(0), max_retries=0, **ONCE_NOW)
    engine.run_next()
    [failed] = executions(task_id)
    retry(failed.id)
    engine.work()
    engine.work()
    runs = executions(task_id)
    assert [(r.attempt, r.status, r.retry_at) for r in runs] == [(1, "FAILED", None), (2, "FAILED", None)]
    assert sorted(failed_in_rq(engine.connection)) == sorted(r.job_id for r in runs)


# -- run now with arguments ------------------------------------------------------------------------

def test_a_run_with_its_own_arguments_uses_them_records_them_and_leaves_the_tasks_alone(
        engine: InProcessEngine) -> None:
    task_id = create(name="greet", job="echo", args={"message": "own"}, interval_seconds=3600)
    run_now(task_id, args={"message": "given"})
    engine.work()
    run_now(task_id)
    engine.work()
    given, own = executions(task_id)
    assert (given.status, given.args, given.result) == ("SUCCESS", {"message": "given"}, {"message": "given"})
    assert (own.status, own.args, own.result) == ("SUCCESS", None, {"message": "own"})
    assert task(task_id).args == {"message": "own"}


def test_the_retries_of_a_run_with_its_own_arguments_use_the_same_arguments(engine: InProcessEngine) -> None:
    task_id = create(name="flaky", job="fail", args={"message": "own"}, interval_seconds=3600, max_retries=1,
                     retry_backoff_seconds=1)
    run_now(task_id, args={"message": "given"})
    engine.work()
    engine.run_until(lambda: len(executions(task_id)) == 2, 30, "the retry of the run with arguments")
    first, second = executions(task_id)
    assert [(r.attempt, r.trigger, r.status) for r in (first, second)] == [(1, "MANUAL", "RETRYING"),
                                                                         (2, "RETRY", "FAILED")]
    assert first.args == second.args == {"message": "given", "times": None}  # stored as a task's args are: checked
    assert second.message == "RuntimeError: given"


def test_arguments_written_into_redis_without_the_apps_signature_never_run(engine: InProcessEngine) -> None:
    """Whoever can write to Redis may queue Chime's entry point for a task, but not with arguments of their
    choosing: only arguments signed with the app's SECRET_KEY run (a forged or missing signature: dropped)."""
    task_id = create(name="greet", job="echo", args={"message": "own"}, interval_seconds=3600)
    owner = task(task_id)
    queue = Queue("default", connection=engine.connection, serializer=PlainPickleSerializer)
    kwargs = {"task_id": task_id, "trigger": "MANUAL", "task_created_at": owner.created_at.isoformat(),
              "args": {"message": "forged"}}
    unsigned = queue.enqueue(occ.EXECUTE_FUNC, kwargs=kwargs, job_id="chime-%d-1-1-m" % task_id)
    wrong = queue.enqueue(occ.EXECUTE_FUNC, kwargs={**kwargs, "args_signature": occ.args_signature(
        "not-the-key", task_id, kwargs["args"])}, job_id="chime-%d-2-1-m" % task_id)
    engine.work()
    assert executions(task_id) == []
    for job in (unsigned, wrong):
        assert Job.fetch(job.id, connection=engine.connection, serializer=PlainPickleSerializer).return_value()[
            "dropped"] is True
    run_now(task_id, args={"message": "signed"})  # the app's own signature runs
    engine.work()
    [run] = executions(task_id)
    assert run.result == {"message": "signed"}
