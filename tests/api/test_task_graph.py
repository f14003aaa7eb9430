"""GET /api/tasks/graph/: the tasks with their latest outcome and which task waits for which."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import insert

from chime.enums import Role
from chime.extensions import db
from chime.models import Task, task_dependencies
from tests.roles.test_route_roles import token_for

RAN_AT = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def add_task(name: str, *parents: Task, **fields: Any) -> Task:
    task = Task(name=name, job="echo", args={}, schedule_type="INTERVAL", interval_seconds=60, timezone="UTC",
                **fields)
    task.parents.extend(parents)
    db.session.add(task)
    db.session.commit()
    return task


@pytest.fixture
def pipeline() -> dict[str, Task]:
    """extract -> (transform, audit); transform -> load; and a lone task."""
    extract = add_task("extract", last_status="SUCCESS", last_run_at=RAN_AT)
    transform = add_task("transform", extract, last_status="FAILED", last_run_at=RAN_AT)
    audit = add_task("audit", extract, enabled=False)
    load = add_task("load", transform)
    lone = add_task("lone", last_status="SUCCESS")
    return {"extract": extract, "transform": transform, "audit": audit, "load": load, "lone": lone}


def test_the_graph_lists_the_tasks_with_dependencies_and_who_waits_for_whom(
        api: Any, pipeline: dict[str, Task]) -> None:
    graph = api.get("/api/tasks/graph/").get_json()
    t = {name: task.id for name, task in pipeline.items()}

    assert [node["name"] for node in graph["nodes"]] == ["extract", "transform", "audit", "load"]
    assert sorted((edge["parent_id"], edge["child_id"]) for edge in graph["edges"]) == sorted(
        [(t["extract"], t["transform"]), (t["extract"], t["audit"]), (t["transform"], t["load"])])
    assert graph["total"] == 4 and graph["isolated"] == 1 and graph["truncated"] is False


def test_each_task_shows_its_latest_outcome_and_whether_it_is_enabled(api: Any, pipeline: dict[str, Task]) -> None:
    nodes = {node["name"]: node for node in api.get("/api/tasks/graph/").get_json()["nodes"]}

    assert nodes["extract"] == {"id": pipeline["extract"].id, "name": "extract", "enabled": True,
                                "last_status": "SUCCESS", "last_run_at": "2026-11-30T09:00:00+00:00"}
    assert nodes["transform"]["last_status"] == "FAILED"
    assert nodes["audit"]["enabled"] is False and nodes["load"]["last_status"] is None


def test_tasks_without_dependencies_are_counted_and_listed_on_request(api: Any, pipeline: dict[str, Task]) -> None:
    graph = api.get("/api/tasks/graph/?isolated=true").get_json()

    assert [node["name"] for node in graph["nodes"]] == ["extract", "transform", "audit", "load", "lone"]
    assert graph["total"] == 5 and graph["isolated"] == 1


def test_a_limit_keeps_the_first_tasks_by_id_and_the_dependencies_between_them(
        api: Any, pipeline: dict[str, Task]) -> None:
    graph = api.get("/api/tasks/graph/?limit=2").get_json()

    assert [node["name"] for node in graph["nodes"]] == ["extract", "transform"]
    assert graph["edges"] == [{"parent_id": pipeline["extract"].id, "child_id": pipeline["transform"].id}]
    assert graph["total"] == 4 and graph["truncated"] is True


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=ten", "isolated=maybe"])
def test_a_bad_argument_is_a_400(api: Any, query: str) -> None:
    assert api.get(f"/api/tasks/graph/?{query}").status_code == 400


def test_a_viewer_may_read_the_graph(client: Any, pipeline: dict[str, Task]) -> None:
    assert client.get("/api/tasks/graph/", headers=token_for(Role.VIEWER)).status_code == 200


def add_chain(count: int) -> None:
    """`count` tasks, each depending on the one before."""
    db.session.execute(insert(Task), [
        {"name": f"step-{i:05d}", "job": "echo", "args": {}, "schedule_type": "INTERVAL", "interval_seconds": 60,
         "timezone": "UTC"} for i in range(count)])
    ids = list(db.session.scalars(db.select(Task.id).order_by(Task.id)))
    db.session.execute(insert(task_dependencies), [
        {"task_id": child, "parent_id": parent} for parent, child in zip(ids, ids[1:])])
    db.session.commit()


def test_with_10000_tasks_the_graph_holds_the_first_1000_and_says_it_is_cut(api: Any) -> None:
    add_chain(10_000)

    response = api.get("/api/tasks/graph/")
    graph = response.get_json()

    assert response.status_code == 200
    assert len(graph["nodes"]) == 1000 and len(graph["edges"]) == 999
    assert graph["total"] == 10_000 and graph["truncated"] is True
