"""Routes for alert rules, the maintenance switch and a task's alert mute: viewers read, admins change
(every change audited, in chime.alert_rules)."""
from __future__ import annotations

from typing import Any

from flask import jsonify, url_for

from chime import alert_rules
from chime.enums import Role
from chime.schemas.rule import MaintenanceRead, RuleRead, TaskMuteRead
from chime.services import get_task
from chime.unit_of_work import unit_of_work
from chime.validation import MAX_ID
from webapp.api.blueprint import bp
from webapp.api.common import json_body, paginate, query_args
from webapp.auth import allow


def _read(rule: Any) -> dict[str, Any]:
    return RuleRead.dump(alert_rules.rule_view(rule))


@bp.get("/rules/")
@allow(Role.VIEWER)
def list_rules() -> Any:
    args = query_args()
    task_id = args.integer("task_id", None, 1, MAX_ID)
    default = args.boolean("default")
    return jsonify(paginate(alert_rules.rule_query(task_id=task_id, default=default), _read))


@bp.post("/rules/")
@allow(Role.ADMIN)
def create_rule() -> Any:
    with unit_of_work():
        rule = alert_rules.create_rule(json_body())
    response = jsonify(_read(rule))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_rule", rule_id=rule.id)
    return response


@bp.get("/rules/<int:rule_id>/")
@allow(Role.VIEWER)
def get_rule(rule_id: int) -> Any:
    return jsonify(_read(alert_rules.get_rule(rule_id)))


@bp.patch("/rules/<int:rule_id>/")
@allow(Role.ADMIN)
def update_rule(rule_id: int) -> Any:
    with unit_of_work():
        rule = alert_rules.update_rule(alert_rules.get_rule(rule_id), json_body())
    return jsonify(_read(rule))


@bp.delete("/rules/<int:rule_id>/")
@allow(Role.ADMIN)
def delete_rule(rule_id: int) -> Any:
    with unit_of_work():
        alert_rules.delete_rule(alert_rules.get_rule(rule_id))
    return "", 204


@bp.get("/alerts/maintenance/")
@allow(Role.VIEWER)
def get_maintenance() -> Any:
    return jsonify(MaintenanceRead.dump(alert_rules.maintenance_view()))


@bp.put("/alerts/maintenance/")
@allow(Role.ADMIN)
def set_maintenance() -> Any:
    with unit_of_work():
        view = alert_rules.set_maintenance(json_body())
    return jsonify(MaintenanceRead.dump(view))


@bp.put("/tasks/<int:task_id>/alerts-mute/")
@allow(Role.ADMIN)
def mute_task_alerts(task_id: int) -> Any:
    with unit_of_work():
        task = alert_rules.mute_task(get_task(task_id), json_body())
    return jsonify(TaskMuteRead.of(task_id=task.id, alerts_muted_until=task.alerts_muted_until))
