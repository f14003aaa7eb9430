"""One unit of work: services join the caller's transaction, it commits once, and Redis is touched only
after that commit succeeded (on SQLite and Postgres)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from chime import occurrence as occ
from chime import services
from chime.errors import ConflictError
from chime.extensions import db
from chime.models import Task
from chime.unit_of_work import NoUnitOfWork, after_commit, unit_of_work

EVERY_MINUTE = {"job": "noop", "schedule_type": "INTERVAL", "interval_seconds": 60}


def redis_snapshot(connection: Any) -> dict[bytes, bytes]:
    """Every key of the test's private Redis with its serialized value (DUMP)."""
    return {key: connection.dump(key) for key in connection.keys("*")}


def task_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Task))


@pytest.fixture
def commits(app: Any) -> Iterator[list[int]]:
    """One entry per transaction committed by any session while the test runs."""
    seen: list[int] = []

    def count(_session: Session) -> None:
        seen.append(1)

    event.listen(Session, "after_commit", count)
    yield seen
    event.remove(Session, "after_commit", count)


def test_two_services_in_one_unit_of_work_commit_once(app: Any, redis_client: Any, commits: list[int]) -> None:
    with unit_of_work():
        first = services.create_task({"name": "first", **EVERY_MINUTE}, allow_shell=False)
        services.create_task({"name": "second", **EVERY_MINUTE, "depends_on": [first.id]}, allow_shell=False)
    assert len(commits) == 1
    assert task_count() == 2
    assert all(occ.pending_job_id(redis_client, task.id) for task in db.session.scalars(select(Task)))


def test_an_update_and_a_toggle_together_commit_once(app: Any, redis_client: Any, commits: list[int]) -> None:
    with unit_of_work():
        task = services.create_task({"name": "ticker", **EVERY_MINUTE}, allow_shell=False)
    commits.clear()
    with unit_of_work():
        services.update_task(task, {"interval_seconds": 300}, partial=True, allow_shell=False)
        services.toggle_task(task, enabled=False)
    assert len(commits) == 1
    assert occ.pending_job_id(redis_client, task.id) is None


def test_a_service_failing_inside_a_unit_of_work_keeps_nothing_and_leaves_redis_untouched(
        app: Any, redis_client: Any) -> None:
    with unit_of_work():
        services.create_task({"name": "taken", **EVERY_MINUTE}, allow_shell=False)
    before = redis_snapshot(redis_client)
    with pytest.raises(ConflictError):
        with unit_of_work():
            services.create_task({"name": "new", **EVERY_MINUTE}, allow_shell=False)
            services.create_task({"name": "taken", **EVERY_MINUTE}, allow_shell=False)
    assert [task.name for task in db.session.scalars(select(Task))] == ["taken"]
    assert redis_snapshot(redis_client) == before


def test_an_update_that_fails_to_commit_leaves_redis_untouched(app: Any, redis_client: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with unit_of_work():
        task = services.create_task({"name": "ticker", **EVERY_MINUTE}, allow_shell=False)
    task_id = task.id
    before = redis_snapshot(redis_client)

    def refused() -> None:
        raise OperationalError("COMMIT", {}, Exception("the database went away"))

    monkeypatch.setattr(db.session, "commit", refused)
    with pytest.raises(OperationalError):
        with unit_of_work():
            services.update_task(services.get_task(task_id), {"interval_seconds": 3600}, partial=True,
                                 allow_shell=False)
    monkeypatch.undo()
    assert redis_snapshot(redis_client) == before
    assert services.get_task(task_id).interval_seconds == 60


def test_an_api_update_that_fails_to_commit_is_a_503_and_leaves_redis_untouched(
        app: Any, api: Any, redis_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    task = api.post("/api/tasks/", json={"name": "ticker", **EVERY_MINUTE}).get_json()
    before = redis_snapshot(redis_client)

    def refused() -> None:
        raise OperationalError("COMMIT", {}, Exception("deadlock detected"))

    monkeypatch.setattr(db.session, "commit", refused)
    for call in (lambda: api.patch(f"/api/tasks/{task['id']}/", json={"interval_seconds": 3600}),
                 lambda: api.post(f"/api/tasks/{task['id']}/toggle/"),
                 lambda: api.delete(f"/api/tasks/{task['id']}/")):
        assert call().status_code == 503
    monkeypatch.undo()
    assert redis_snapshot(redis_client) == before
    assert api.get(f"/api/tasks/{task['id']}/").get_json()["interval_seconds"] == 60


def test_nested_units_commit_once_and_run_the_effects_after_the_outer_commit(app: Any, commits: list[int]) -> None:
    ran: list[int] = []
    with unit_of_work():
        with unit_of_work():
            after_commit(lambda: ran.append(len(commits)))
        assert ran == [] and commits == []
    assert ran == [1] and len(commits) == 1


def test_an_effect_outside_a_unit_of_work_is_refused(app: Any) -> None:
    with pytest.raises(NoUnitOfWork):
        after_commit(lambda: None)


def test_a_failing_effect_does_not_undo_the_commit_or_stop_the_next_effect(app: Any) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("Redis said no")

    with unit_of_work():
        services.create_task({"name": "kept", **EVERY_MINUTE}, allow_shell=False)
        after_commit(broken)
        after_commit(lambda: ran.append("next"))
    assert ran == ["next"]
    assert task_count() == 1


def test_no_use_case_commits_or_rolls_back_itself() -> None:
    """Only the caller's unit of work ends a transaction: the use-cases and import never do."""
    import ast
    from pathlib import Path

    import chime.services
    import chime.transfer

    for module in (chime.services, chime.transfer):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        ended = [node.lineno for node in ast.walk(tree)
                 if isinstance(node, ast.Attribute) and node.attr in ("commit", "rollback")]
        assert ended == [], (module.__name__, ended)
