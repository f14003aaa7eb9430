"""A job that asks for its context receives it from the executor on every run: scheduled, retried and manual."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

import jobs.registry as registry
from chime import services
from chime.errors import ValidationError
from chime.extensions import db
from jobs.registry import JobContext
from tests.engine.helpers import create, executions, in_seconds
from tests.engine.inprocess.engine import InProcessEngine

SEEN: list[JobContext] = []


def remember(note: str, ctx: JobContext) -> str:
    """Keep the context it was given; fail the first attempt, so the occurrence is retried."""
    SEEN.append(ctx)
    if ctx.attempt == 1 and ctx.trigger == "SCHEDULE":
        raise RuntimeError("first attempt fails")
    return note


@pytest.fixture(autouse=True)
def remembering_job() -> Iterator[None]:
    SEEN.clear()
    with registry.temporary(registry.make_spec(remember, name="remember")):
        yield


def test_scheduled_retried_and_manual_runs_get_their_context(engine: InProcessEngine) -> None:
    task_id = create(name="with context", job="remember", args={"note": "hi"}, schedule_type="ONE_TIME",
                     interval_seconds=None, run_at=in_seconds(0), max_retries=1, retry_backoff_seconds=1)
    engine.run_next()
    engine.run_next()  # the retry, at its retry_at
    services.run_task_now(services.get_task(task_id))
    db.session.rollback()
    engine.work()

    scheduled, retried, manual = SEEN
    runs = executions(task_id)
    assert [(r.trigger, r.status) for r in runs] == [("SCHEDULE", "RETRYING"), ("RETRY", "SUCCESS"),
                                                     ("MANUAL", "SUCCESS")]
    assert [(c.task_id, c.task_name, c.execution_id, c.attempt, c.trigger) for c in SEEN] == [
        (task_id, "with context", runs[0].id, 1, "SCHEDULE"),
        (task_id, "with context", runs[1].id, 2, "RETRY"),
        (task_id, "with context", runs[2].id, 1, "MANUAL")]
    assert [c.scheduled_for for c in SEEN] == [r.scheduled_for for r in runs]
    assert scheduled.idempotency_key == retried.idempotency_key != manual.idempotency_key
    assert scheduled.idempotency_key is not None and manual.idempotency_key is not None


def test_the_context_is_not_an_argument_a_task_may_set(engine: InProcessEngine) -> None:
    with pytest.raises(ValidationError) as raised:
        create(name="sets its context", job="remember", args={"note": "hi", "ctx": {"attempt": 9}})

    assert raised.value.fields == {
        "args.ctx": "is the job's context, which Chime passes to every run; it is not an argument"}
