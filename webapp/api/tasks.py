"""Routes for task definitions."""
from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request, url_for

from chime import controls, services
from chime.enums import Role
from webapp.api.blueprint import bp
from webapp.auth import allow
from webapp import queries
from webapp.api.common import json_body, paginate, query_args
from webapp.queries import MAX_SEARCH_LENGTH_CHARS
from chime.models import ScheduleType, Status, Trigger
from chime.schemas.execution import RunResult, run_input_args
from chime.schemas.task import task_to_dict
from chime.unit_of_work import unit_of_work

STATUSES = tuple(s.value for s in Status)
SCHEDULE_TYPES = tuple(t.value for t in ScheduleType)


def _allow_shell() -> bool:
    return bool(current_app.config["ALLOW_SHELL_JOBS"])


@bp.get("/tasks/")
@allow(Role.VIEWER)
def list_tasks() -> Any:
    """Tasks by id, filtered like the admin's list (queries.task_query: the one task search)."""
    args = query_args()
    filters = queries.TaskFilters(search=args.text("search", MAX_SEARCH_LENGTH_CHARS),
                                  status=args.choice("status", STATUSES), enabled=args.boolean("enabled"),
                                  schedule_type=args.choice("schedule_type", SCHEDULE_TYPES))
    return jsonify(paginate(queries.task_query(filters, queries.TASKS_BY_ID), task_to_dict))


@bp.post("/tasks/")
@allow(Role.ADMIN)
def create_task() -> Any:
    with unit_of_work():
        task = services.create_task(json_body(), allow_shell=_allow_shell())
    response = jsonify(task_to_dict(task))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_task", task_id=task.id)
    return response


@bp.get("/tasks/<int:task_id>/")
@allow(Role.VIEWER)
def get_task(task_id: int) -> Any:
    return jsonify(task_to_dict(services.get_task(task_id)))


@bp.put("/tasks/<int:task_id>/")
@allow(Role.ADMIN)
def replace_task(task_id: int) -> Any:
    with unit_of_work():
        task = services.update_task(services.get_task(task_id), json_body(), partial=False,
                                    allow_shell=_allow_shell())
    return jsonify(task_to_dict(task))


@bp.patch("/tasks/<int:task_id>/")
@allow(Role.ADMIN)
def patch_task(task_id: int) -> Any:
    with unit_of_work():
        task = services.update_task(services.get_task(task_id), json_body(), partial=True,
                                    allow_shell=_allow_shell())
    return jsonify(task_to_dict(task))


@bp.delete("/tasks/<int:task_id>/")
@allow(Role.ADMIN)
def delete_task(task_id: int) -> Any:
    """Delete a task; one others depend on is a 409 naming them, unless ?detach=true removes those
    dependencies first (in the same transaction)."""
    detach = query_args().boolean("detach") or False
    with unit_of_work():
        task = services.get_task(task_id)
        if task.children and not detach:
            raise controls.dependants_conflict(task, (
                f"Remove it from their dependencies first, or send DELETE {url_for('api.delete_task', task_id=task.id)}"
                "?detach=true to remove those dependencies and delete it in one step."))
        controls.detach_dependants(task)
        services.delete_task(task)
    return "", 204


@bp.post("/tasks/<int:task_id>/toggle/")
@allow(Role.OPERATOR)
def toggle_task(task_id: int) -> Any:
    with unit_of_work():
        task = services.toggle_task(services.get_task(task_id))
    return jsonify(task_to_dict(task))


@bp.post("/tasks/<int:task_id>/run/")
@allow(Role.OPERATOR)
def run_task(task_id: int) -> Any:
    """Run now; an optional body {"args": {...}} overrides the task's arguments for this run only."""
    task = services.get_task(task_id)
    args = run_input_args(json_body()) if request.get_data(cache=True) else None
    job_id = services.run_task_now(task, args=args, allow_shell=_allow_shell())
    return jsonify(RunResult.of(job_id=job_id, task_id=task.id, trigger=Trigger.MANUAL)), 202
