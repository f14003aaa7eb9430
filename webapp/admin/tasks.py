"""Admin pages for tasks: list, create, detail, edit, toggle, run now, delete."""
from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for

from chime.triggers import ScheduleError, fire_times
from chime import controls, services
from webapp import queries
from webapp.admin import forms
from chime.enums import Role
from webapp.admin.blueprint import bp
from webapp.admin.filters import page_arg, task_filters
from webapp.admin.views import safe_next
from webapp.auth import allow
from chime.errors import ConflictError, UnavailableError, ValidationError
from chime.models import QUEUE_NAMES, Task
from chime.schemas.task import task_to_dict
from chime.timeutil import isoformat, utcnow
from chime.unit_of_work import unit_of_work

FIRE_TIMES_SHOWN = 5


def _allow_shell() -> bool:
    return bool(current_app.config["ALLOW_SHELL_JOBS"])


@functools.lru_cache(maxsize=1)
def _timezones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


@bp.get("/tasks")
@allow(Role.VIEWER)
def task_list() -> Any:
    filters = task_filters(request.args)
    page = queries.task_page(filters, page_arg(request.args))
    return render_template("tasks/list.html", page=page, filters=filters, now=utcnow())


@bp.route("/tasks/new", methods=["GET", "POST"])
@allow(Role.ADMIN)
def task_new() -> Any:
    if request.method == "GET":
        return _render_form(None, forms.blank_values())
    return _save(forms.values_from_form(request.form), None)


@bp.route("/tasks/<int:task_id>/edit", methods=["GET", "POST"])
@allow(Role.ADMIN)
def task_edit(task_id: int) -> Any:
    task = services.get_task(task_id)
    if request.method == "GET":
        return _render_form(task, forms.values_from_task(task))
    return _save(forms.values_from_form(request.form), task)


def _save(values: dict[str, Any], task: Task | None) -> Any:
    try:
        with unit_of_work():
            saved = forms.save_task(values, task, allow_shell=_allow_shell())
    except ValidationError as error:
        return _render_form(task, values, error.fields or {}, 400)
    except ConflictError as error:
        return _render_form(task, values, error.fields or {"name": error.message}, 409, error.message)
    flash(f"Task “{saved.name}” {'updated' if task else 'created'}.", "success")
    return redirect(url_for("admin.task_detail", task_id=saved.id))


def _render_form(task: Task | None, values: dict[str, Any], errors: dict[str, str] | None = None,
                 status: int = 200, message: str | None = None) -> Any:
    html = render_template(
        "tasks/form.html", task=task, values=values, errors=errors or {}, message=message,
        error_summary=forms.error_summary(errors or {}, values["job"]), queues=[(q, q) for q in QUEUE_NAMES],
        jobs=forms.job_choices(_allow_shell()), timezones=_timezones(),
        task_choices=queries.task_choices(exclude_id=task.id if task else None),
        overlaps=forms.OVERLAPS, notify_policies=forms.NOTIFY_POLICIES,
    )
    return html, status


@bp.get("/tasks/<int:task_id>")
@allow(Role.VIEWER)
def task_detail(task_id: int) -> Any:
    task = services.get_task(task_id)
    history = queries.task_execution_page(task.id, page_arg(request.args))
    return render_template("tasks/detail.html", task=task, history=history, now=utcnow(),
                           fire_times=_next_fire_times(task))


@bp.get("/tasks/<int:task_id>/live")
@allow(Role.VIEWER)
def task_live(task_id: int) -> Any:
    """JSON for the detail page's live refresh: the task and its next fire times."""
    task = services.get_task(task_id)
    return jsonify({"task": task_to_dict(task), "next_runs": [isoformat(at) for at in _next_fire_times(task)]})


def _next_fire_times(task: Task) -> list[Any]:
    try:
        return fire_times(services.schedule_of(task), utcnow(), FIRE_TIMES_SHOWN)
    except (ScheduleError, ValueError):
        return []


@bp.post("/tasks/<int:task_id>/toggle")
@allow(Role.OPERATOR)
def task_toggle(task_id: int) -> Any:
    with unit_of_work():
        task = services.toggle_task(services.get_task(task_id))
    flash(f"Task “{task.name}” {'enabled' if task.enabled else 'disabled'}.", "success")
    return redirect(safe_next(request.form.get("next"), url_for("admin.task_detail", task_id=task.id)))


@bp.post("/tasks/<int:task_id>/run")
@allow(Role.OPERATOR)
def task_run(task_id: int) -> Any:
    """Run now; the "Run with arguments…" form sends `args` (JSON) for this run only."""
    task = services.get_task(task_id)
    try:
        args = forms.run_args_field(request.form.get("args"))
        job_id = services.run_task_now(task, args=args, allow_shell=_allow_shell())
        with_args = "" if args is None else " with the arguments given"
        flash(f"Task “{task.name}” queued to run now{with_args} on queue {task.queue} (job {job_id}).", "success")
    except (UnavailableError, ValidationError) as error:
        flash(error.message, "error")
    return redirect(safe_next(request.form.get("next"), url_for("admin.task_detail", task_id=task.id)))


@bp.route("/tasks/<int:task_id>/delete", methods=["GET", "POST"])
@allow(Role.ADMIN)
def task_delete(task_id: int) -> Any:
    task = services.get_task(task_id)
    if request.method == "GET":
        return render_template("tasks/delete.html", task=task)
    name = task.name
    try:
        with unit_of_work():
            if request.form.get("detach") == "yes":  # "Remove the dependency and delete": one transaction
                controls.detach_dependants(task)
            services.delete_task(task)
    except ConflictError as error:
        return render_template("tasks/delete.html", task=task, error=error.message), 409
    flash(f"Task “{name}” deleted.", "success")
    return redirect(url_for("admin.task_list"))


@bp.get("/tasks/preview")
@allow(Role.VIEWER)
def task_preview() -> Any:
    """JSON: the next fire times of the schedule being edited (the form's live preview)."""
    return jsonify(forms.schedule_preview(request.args, utcnow(), FIRE_TIMES_SHOWN))
