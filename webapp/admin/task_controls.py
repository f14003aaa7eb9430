"""Admin actions on tasks beyond the form: pause and resume, bulk actions from the list, clone."""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from chime import controls, services
from chime.audit import current_actor
from chime.enums import Role
from chime.errors import ChimeError, ForbiddenError, ValidationError
from chime.unit_of_work import unit_of_work
from chime.validation import instant_in_zone, read_iso_datetime
from webapp.arguments import parse_id
from webapp.admin.blueprint import bp
from webapp.admin.views import safe_next
from webapp.auth import allow

DONE = {"enable": "enabled", "disable": "disabled", "pause": "paused", "resume": "resumed",
        "run_now": "queued to run now", "delete": "deleted"}


@bp.post("/tasks/<int:task_id>/pause")
@allow(Role.OPERATOR)
def task_pause(task_id: int) -> Any:
    """Pause with a reason; the optional resume time is a wall-clock time in the task's time zone."""
    task = services.get_task(task_id)
    try:
        resume_at = _resume_at(request.form.get("resume_at", ""), task.timezone)
        with unit_of_work():
            controls.pause_task(task, {"reason": request.form.get("reason", ""), "resume_at": resume_at})
    except ValidationError as error:
        flash("The task was not paused: " + "; ".join(f"{k}: {v}" for k, v in (error.fields or {}).items()), "error")
    else:
        flash(f"Task “{task.name}” paused.", "success")
    return redirect(url_for("admin.task_detail", task_id=task_id))


def _resume_at(text: str, zone: str) -> Any:
    """The form's resume time (datetime-local: no offset, read in the task's zone) as an aware instant."""
    if not text.strip():
        return None
    try:
        return instant_in_zone(read_iso_datetime(text), ZoneInfo(zone))
    except ValueError as error:
        raise ValidationError({"resume_at": str(error)}) from None


@bp.post("/tasks/<int:task_id>/resume")
@allow(Role.OPERATOR)
def task_resume(task_id: int) -> Any:
    with unit_of_work():
        task = controls.resume_task(services.get_task(task_id))
    flash(f"Task “{task.name}” resumed.", "success")
    return redirect(safe_next(request.form.get("next"), url_for("admin.task_detail", task_id=task_id)))


@bp.post("/tasks/bulk")
@allow(Role.OPERATOR)
def task_bulk() -> Any:
    """The list's checkboxes and action; delete (admins only) asks for a confirmation first."""
    back = safe_next(request.form.get("next"), url_for("admin.task_list"))
    action, ids = request.form.get("action", ""), request.form.getlist("ids")
    if action == "delete" and not current_actor().role.includes(Role.ADMIN):
        raise ForbiddenError("Deleting tasks needs the admin role")
    try:
        payload = _bulk_payload(action, ids, request.form)
        if action == "delete" and request.form.get("confirm") != "yes":
            return render_template("tasks/bulk_delete.html", tasks=controls.load_tasks(payload["ids"]), back=back)
        with unit_of_work():
            result = controls.run_bulk(payload)
    except ChimeError as error:
        flash(error.message, "error")
        return redirect(back)
    flash(f"{len(result['results'])} task(s) {DONE[action]}.", "success")
    return redirect(back)


def _bulk_payload(action: str, ids: list[str], form: MultiDict) -> dict[str, Any]:
    if not ids:
        raise ValidationError({"ids": "select at least one task"}, "Select at least one task first.")
    payload: dict[str, Any] = {"action": action, "ids": [parse_id(raw, "ids") for raw in ids]}
    if action == "pause":
        payload["reason"] = form.get("reason", "")
    return payload


@bp.post("/tasks/<int:task_id>/clone")
@allow(Role.ADMIN)
def task_clone(task_id: int) -> Any:
    """Copy the task (created disabled) and open the copy's edit page to review it."""
    task = services.get_task(task_id)
    try:
        with unit_of_work():
            copy = controls.clone_task(task, {}, allow_shell=bool(current_app.config["ALLOW_SHELL_JOBS"]))
    except ChimeError as error:
        flash(error.message, "error")
        return redirect(url_for("admin.task_detail", task_id=task_id))
    flash(f"Task “{task.name}” cloned as “{copy.name}”, disabled: review it, then enable it.", "success")
    return redirect(url_for("admin.task_edit", task_id=copy.id))
