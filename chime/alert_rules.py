"""Use-cases of alert rules, the maintenance switch and task mutes (API, admin and CLI alike): they flush,
never commit, and audit every change (object types `rule`, `task`, `maintenance`)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from chime import audit, rules
from chime.errors import NotFoundError, ValidationError
from chime.extensions import db
from chime.models import AlertRule, AlertState, Channel, Task
from chime.schemas.rule import read_maintenance, read_rule, read_rule_patch, read_task_mute
from chime.timeutil import as_utc, isoformat

FIELDS = ("events", "channel_ids", "enabled", "failing_threshold", "repeat_every_hours", "group_window_seconds",
          "overrun_after_seconds")
NULLABLE = frozenset({"repeat_every_hours", "overrun_after_seconds"})  # null in a PATCH: back to the default


def rule_view(rule: AlertRule) -> dict[str, Any]:
    task = db.session.get(Task, rule.task_id) if rule.task_id is not None else None
    return {"id": rule.id, "task_id": rule.task_id, "task_name": task.name if task else None,
            "events": list(rule.events), "channel_ids": list(rule.channel_ids), "enabled": rule.enabled,
            "failing_threshold": rule.failing_threshold, "repeat_every_hours": rule.repeat_every_hours,
            "group_window_seconds": rule.group_window_seconds,
            "overrun_after_seconds": rule.overrun_after_seconds, "created_at": rule.created_at,
            "updated_at": rule.updated_at}


def rule_query(task_id: int | None = None, default: bool | None = None) -> Select:
    query = select(AlertRule).order_by(AlertRule.task_id.is_not(None), AlertRule.task_id, AlertRule.id)
    if task_id is not None:
        query = query.where(AlertRule.task_id == task_id)
    if default:
        query = query.where(AlertRule.task_id.is_(None))
    return query


def get_rule(rule_id: int) -> AlertRule:
    rule = db.session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFoundError("rule", rule_id)
    return rule


def _audit_fields(rule: AlertRule) -> dict[str, Any]:
    return {"task_id": rule.task_id, **{name: getattr(rule, name) for name in FIELDS}}


def _name(rule: AlertRule) -> str:
    task = db.session.get(Task, rule.task_id) if rule.task_id is not None else None
    return f"rule of {task.name}" if task else "default rule"


def _check_channels(channel_ids: list[int]) -> list[int]:
    unique = list(dict.fromkeys(channel_ids))
    found = set(db.session.scalars(select(Channel.id).where(Channel.id.in_(unique))))
    missing = [str(cid) for cid in unique if cid not in found]
    if missing:
        raise ValidationError({"channel_ids": f"no such channel: {', '.join(missing)}"})
    return unique


def create_rule(payload: Any) -> AlertRule:
    data = read_rule(payload)
    if data.task_id is not None and db.session.get(Task, data.task_id) is None:
        raise ValidationError({"task_id": f"no such task: {data.task_id}"})
    rule = AlertRule(task_id=data.task_id, events=list(dict.fromkeys(data.events)),
                     channel_ids=_check_channels(data.channel_ids), enabled=data.enabled,
                     failing_threshold=data.failing_threshold, repeat_every_hours=data.repeat_every_hours,
                     group_window_seconds=data.group_window_seconds,
                     overrun_after_seconds=data.overrun_after_seconds)
    db.session.add(rule)
    db.session.flush()
    audit.record("create", "rule", rule.id, _name(rule), after=_audit_fields(rule))
    return rule


def update_rule(rule: AlertRule, payload: Any) -> AlertRule:
    patch = read_rule_patch(payload)
    before = _audit_fields(rule)
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        if value is None and name not in NULLABLE:
            raise ValidationError({name: "must not be null"})
        if name == "channel_ids":
            value = _check_channels(value)
        if name == "events":
            value = list(dict.fromkeys(value))
        setattr(rule, name, value)
    db.session.flush()
    after = _audit_fields(rule)
    changed = [k for k in after if after[k] != before[k]]
    if changed:
        audit.record("update", "rule", rule.id, _name(rule), before={k: before[k] for k in changed},
                     after={k: after[k] for k in changed})
    return rule


def forget_channel(channel_id: int) -> None:
    """Take a channel being deleted out of every rule that names it (each change audited), so no rule keeps
    an id that a later channel could be given, and a rule's unchanged ids still pass its own check."""
    for rule in db.session.scalars(select(AlertRule).order_by(AlertRule.id)):
        if channel_id in rule.channel_ids:
            before = list(rule.channel_ids)
            rule.channel_ids = [kept for kept in before if kept != channel_id]
            audit.record("update", "rule", rule.id, _name(rule), before={"channel_ids": before},
                         after={"channel_ids": list(rule.channel_ids)}, details={"channel_deleted": channel_id})
    db.session.flush()


def delete_rule(rule: AlertRule) -> None:
    audit.record("delete", "rule", rule.id, _name(rule), before=_audit_fields(rule))
    db.session.delete(rule)
    db.session.flush()


def maintenance_view() -> dict[str, Any]:
    suppressed = db.session.scalar(select(func.coalesce(func.sum(AlertState.suppressed_count), 0)))
    return {**rules.maintenance(), "suppressed": int(suppressed or 0)}


def set_maintenance(payload: Any, now: datetime | None = None) -> dict[str, Any]:
    data = read_maintenance(payload)
    before = rules.maintenance()
    after = rules.set_maintenance(data.on, data.reason.strip(), now)
    if before["on"] != after["on"] or before["reason"] != after["reason"]:
        audit.record("enable" if data.on else "disable", "maintenance", None, "alert maintenance",
                     before={"on": before["on"], "reason": before["reason"]},
                     after={"on": after["on"], "reason": after["reason"]})
    return maintenance_view()


def mute_task(task: Task, payload: Any) -> Task:
    """Mute a task's alerts until an instant (null unmutes); audited as an update of the task."""
    until = as_utc(read_task_mute(payload).until)
    before = isoformat(task.alerts_muted_until)
    task.alerts_muted_until = until
    db.session.flush()
    if before != isoformat(until):
        audit.record("update", "task", task.id, task.name, before={"alerts_muted_until": before},
                     after={"alerts_muted_until": isoformat(until)})
    return task
