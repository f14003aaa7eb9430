"""Fault injection: the database goes away under a worker (Postgres only: SQLite has no server to lose)."""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.engine.helpers import create, executions, in_seconds
from tests.engine_fixtures import Engine, wait_for
from tests.faults.proxy import Proxy

pytestmark = [pytest.mark.engine, pytest.mark.parametrize("engine_database_url", ["postgres"], indirect=True)]

FINAL = ("SUCCESS", "FAILED", "SKIPPED")


def test_database_unavailable_for_a_worker_drops_nothing(engine: Engine, engine_app: Any,
                                                         engine_database_url: str) -> None:
    connection = engine_app.extensions["redis"]
    target = urlparse(engine_database_url)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 5432)
    proxy.start()
    proxied = f"postgresql+psycopg://{target.username}@127.0.0.1:{proxy.port}{target.path}?{target.query}"
    engine.start("worker", extra_env={"DATABASE_URL": proxied})
    engine.start("scheduler")
    engine.wait_ready(connection)
    proxy.cut()
    try:
        due = [create(name=f"during-outage-{n}", schedule_type="ONE_TIME", interval_seconds=None,
                      run_at=in_seconds(n)) for n in range(3)]
        time.sleep(6)
    finally:
        proxy.restore()
    for task_id in due:
        wait_for(lambda: [r for r in executions(task_id) if r.status in FINAL], 60,
                 f"task {task_id} to be recorded", engine)
    for task_id in due:
        assert [r.status for r in executions(task_id)] in (["SUCCESS"], ["FAILED", "SUCCESS"])
    proxy.cut()
