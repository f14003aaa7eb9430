"""Dependencies in the engine, in process: a child runs after its parent succeeded, and is skipped otherwise."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chime.timeutil import utcnow
from tests.engine.helpers import create, executions, in_seconds, with_status
from tests.engine.inprocess.engine import InProcessEngine


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_child_of_a_failed_parent_is_skipped_and_not_retried(engine: InProcessEngine) -> None:
    parent = create(name="parent", job="fail", schedule_type="ONE_TIME", interval_seconds=None,
                    run_at=in_seconds(0), max_retries=0)
    engine.run_next()
    assert with_status(parent, "FAILED")
    child = create(name="child", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(0),
                   depends_on=[parent])
    engine.run_next()
    engine.dispatch(utcnow() + timedelta(days=1))  # any retry would be due by now
    engine.work()
    [run] = with_status(child, "SKIPPED")
    assert "'parent'" in run.message and "FAILED" in run.message
    assert len(executions(child)) == 1


def test_child_of_a_successful_parent_runs(engine: InProcessEngine) -> None:
    parent = create(name="parent", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(0))
    engine.run_next()
    assert with_status(parent, "SUCCESS")
    child = create(name="child", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(0),
                   depends_on=[parent])
    engine.run_next()
    assert with_status(child, "SUCCESS")
