"""Routes for run controls on tasks: pause, resume, bulk actions and clone (chime.controls does the work)."""
from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request, url_for

from chime import controls, services
from chime.audit import current_actor
from chime.enums import Role
from chime.errors import ForbiddenError
from chime.schemas.task import task_to_dict
from chime.unit_of_work import unit_of_work
from webapp.api.blueprint import bp
from webapp.api.common import json_body
from webapp.auth import allow


@bp.post("/tasks/<int:task_id>/pause/")
@allow(Role.OPERATOR)
def pause_task(task_id: int) -> Any:
    with unit_of_work():
        task = controls.pause_task(services.get_task(task_id), json_body())
    return jsonify(task_to_dict(task))


@bp.post("/tasks/<int:task_id>/resume/")
@allow(Role.OPERATOR)
def resume_task(task_id: int) -> Any:
    with unit_of_work():
        task = controls.resume_task(services.get_task(task_id))
    return jsonify(task_to_dict(task))


@bp.post("/tasks/bulk/")
@allow(Role.OPERATOR)
def bulk_tasks() -> Any:
    """One action on many tasks; delete needs the admin role (checked here: the route is the operators')."""
    body = json_body()
    if isinstance(body, dict) and body.get("action") == "delete" and not current_actor().role.includes(Role.ADMIN):
        raise ForbiddenError(f"Deleting tasks needs the admin role; {current_actor().name} is "
                             f"{current_actor().role.value}")
    with unit_of_work():
        result = controls.run_bulk(body)
    return jsonify(result)


@bp.post("/tasks/<int:task_id>/clone/")
@allow(Role.ADMIN)
def clone_task(task_id: int) -> Any:
    """A copy of the task, created disabled (an empty body is accepted)."""
    body = json_body() if request.get_data(cache=True) else {}
    with unit_of_work():
        copy = controls.clone_task(services.get_task(task_id), body,
                                   allow_shell=bool(current_app.config["ALLOW_SHELL_JOBS"]))
    response = jsonify(task_to_dict(copy))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_task", task_id=copy.id)
    return response
