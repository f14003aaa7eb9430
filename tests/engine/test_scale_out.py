"""Scale-out: several workers, each with its own Redis connection, share the work on Postgres."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.engine.helpers import create, executions, run_now, with_status
from tests.engine_fixtures import Engine, wait_for

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("engine_database_url", ["postgres"], indirect=True)
def test_two_workers_share_the_work(engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"], workers=2, schedulers=0)
    task_id = create(name="spread", job="sleep", args={"seconds": 0.3}, enabled=False, overlap="ALLOW")
    for _ in range(16):
        run_now(task_id)
    wait_for(lambda: len(with_status(task_id, "SUCCESS")) == 16, 60, "sixteen runs", engine)
    per_worker = Counter(r.worker for r in executions(task_id))
    assert len(per_worker) == 2, per_worker
    assert min(per_worker.values()) >= 4, per_worker
