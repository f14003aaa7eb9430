"""A request the database cannot complete (unreachable, a deadlock) is a 503 that changed nothing, never a 500."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from tests.engine.helpers import create
from chime import services
from chime.extensions import db
from chime.models import Task


def test_a_deadlock_while_deleting_a_task_is_a_503_and_the_task_stays(api: Any, app: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    task_id = create(name="contended", interval_seconds=3600)

    def deadlock() -> None:
        raise OperationalError("DELETE FROM tasks", {}, Exception("deadlock detected"))

    monkeypatch.setattr(db.session, "commit", deadlock)
    response = api.delete(f"/api/tasks/{task_id}/")
    monkeypatch.undo()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["error"] == "service_unavailable"
    assert db.session.get(Task, task_id) is not None
    assert services.get_task(task_id).name == "contended"
