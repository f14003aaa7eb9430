"""In-process engine pieces: the real ChimeWorker running jobs in this process, against the private Redis."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import scheduler.worker
from tests.engine.inprocess.engine import work_off


@pytest.fixture
def connection(app: Any) -> Any:
    return app.extensions["redis"]


@pytest.fixture
def work(app: Any, connection: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Run every queued job with the Procfile's worker class, in this process, until the queues are empty."""
    monkeypatch.setattr(scheduler.worker, "_app", app)  # the worker's app is the test's app
    return lambda: work_off(connection)
