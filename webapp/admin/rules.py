"""Admin pages for alert rules: the default rules and maintenance (Alerts → Rules), a task's rules and its
alert mute on the task page. Viewers read; admins change (through chime.alert_rules: validated, audited)."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from chime import alert_rules
from chime.enums import Role
from chime.errors import ChimeError
from chime.extensions import db
from chime.models import AlertRule, Channel, Task
from chime.rules import EVENTS, TASK_EVENTS
from chime.services import get_task
from chime.unit_of_work import unit_of_work
from webapp.admin.blueprint import bp
from webapp.arguments import parse_id
from webapp.auth import allow


def rules_of(task_id: int | None) -> list[AlertRule]:
    return list(db.session.scalars(select(AlertRule).where(
        AlertRule.task_id == task_id if task_id is not None else AlertRule.task_id.is_(None)).order_by(AlertRule.id)))


def channel_names() -> dict[int, str]:
    return dict(db.session.execute(select(Channel.id, Channel.name).order_by(Channel.name)).tuples().all())


bp.add_app_template_global(rules_of, "alert_rules_of")
bp.add_app_template_global(channel_names, "alert_channel_names")
bp.add_app_template_global(TASK_EVENTS, "ALERT_TASK_EVENTS")
bp.add_app_template_global(EVENTS, "ALERT_EVENTS")


def _back(default: str) -> Any:
    target = request.form.get("next", "")
    return redirect(target if target.startswith("/") and not target.startswith("//") else default)


def _failed(error: ChimeError) -> None:
    fields = "; ".join(f"{name}: {reason}" for name, reason in (error.fields or {}).items())
    flash(f"Not saved: {fields or error.message}", "error")


@bp.get("/alerts/rules")
@allow(Role.VIEWER)
def rule_list() -> Any:
    task_rules = list(db.session.scalars(select(AlertRule).where(AlertRule.task_id.is_not(None))
                                         .order_by(AlertRule.task_id, AlertRule.id)))
    names = dict(db.session.execute(select(Task.id, Task.name).where(
        Task.id.in_({r.task_id for r in task_rules}))).tuples().all()) if task_rules else {}
    return render_template("rules/list.html", defaults=rules_of(None), task_rules=task_rules, task_names=names,
                           maintenance=alert_rules.maintenance_view())


def form_rule(form: Any) -> dict[str, Any]:
    """A rule's form as the API's body: empty numbers are left to their defaults, a bad one is a 400."""
    payload: dict[str, Any] = {"events": form.getlist("events"),
                               "channel_ids": [parse_id(c, "channel_ids") for c in form.getlist("channel_ids")]}
    if form.get("task_id", ""):
        payload["task_id"] = parse_id(form["task_id"], "task_id")
    for name, kind in (("failing_threshold", int), ("group_window_seconds", int), ("repeat_every_hours", float),
                       ("overrun_after_seconds", int)):
        raw = form.get(name, "").strip()
        if raw:
            try:
                payload[name] = kind(raw)
            except ValueError:
                payload[name] = raw  # the schema names the field in its 400
    return payload


@bp.post("/alerts/rules")
@allow(Role.ADMIN)
def rule_create() -> Any:
    try:
        with unit_of_work():
            alert_rules.create_rule(form_rule(request.form))
        flash("Rule added.", "success")
    except ChimeError as error:
        _failed(error)
    return _back(url_for("admin.rule_list"))


@bp.post("/alerts/rules/<int:rule_id>/delete")
@allow(Role.ADMIN)
def rule_delete(rule_id: int) -> Any:
    with unit_of_work():
        alert_rules.delete_rule(alert_rules.get_rule(rule_id))
    flash("Rule deleted.", "success")
    return _back(url_for("admin.rule_list"))


@bp.post("/alerts/maintenance")
@allow(Role.ADMIN)
def maintenance_set() -> Any:
    try:
        with unit_of_work():
            view = alert_rules.set_maintenance({"on": request.form.get("on") == "1",
                                                "reason": request.form.get("reason", "")})
        flash("Maintenance is on: every alert is muted." if view["on"] else "Maintenance is off.", "success")
    except ChimeError as error:
        _failed(error)
    return redirect(url_for("admin.rule_list"))


@bp.post("/tasks/<int:task_id>/alerts-mute")
@allow(Role.ADMIN)
def task_alerts_mute(task_id: int) -> Any:
    task = get_task(task_id)
    until = request.form.get("until", "").strip() if request.form.get("action") != "unmute" else ""
    try:
        with unit_of_work():
            alert_rules.mute_task(task, {"until": until or None})
        flash("Alerts of this task are muted." if until else "Alerts of this task are no longer muted.", "success")
    except ChimeError as error:
        _failed(error)
    return redirect(url_for("admin.task_detail", task_id=task_id))
