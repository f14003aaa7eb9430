"""Log retention: delete old execution-log entries and old read notifications, in small batches.

Each batch selects at most `batch_size` ids, deletes them and commits, so no table stays locked
for long and a prune of millions of rows never holds one huge transaction.

Two kinds of rows are kept whatever their age:
- RUNNING executions (the worker still owns them; the reconciler closes lost ones);
- the scheduled run of a ONE_TIME task (trigger other than MANUAL, at the task's run_at): it is
  how the services and the reconciler know the task already ran, so pruning it would make the
  reconciler run the task again.
Unread notifications are never pruned.

Audit events have their own, longer retention (AUDIT_RETENTION_DAYS, 365 by default; 0 keeps them
forever), pruned by the same hourly job and by `flask prune-logs`, in the same batches.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, select, update

from chime.extensions import db
from chime.models import AuditEvent, Execution, Notification, ScheduleType, Status, Task, Trigger
from chime.timeutil import as_utc, isoformat

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000


def cutoff_for(now: datetime, retention_days: int) -> datetime:
    """Return the instant before which rows are old enough to prune."""
    if retention_days < 0:
        raise ValueError("retention_days must be 0 or more")
    return as_utc(now) - timedelta(days=retention_days)


def prune(now: datetime, retention_days: int, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Any]:
    """Delete executions and read notifications created before `now - retention_days`.

    Returns {"executions_deleted", "notifications_deleted", "cutoff"} (cutoff as ISO-8601).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = cutoff_for(now, retention_days)
    # Notifications first: the old read ones go, so fewer rows need their execution_id cleared below.
    notifications = _delete_in_batches(_old_read_notification_ids(cutoff), Notification, batch_size)
    executions = _delete_in_batches(_old_execution_ids(cutoff), Execution, batch_size,
                                    before_delete=_detach_notifications)
    return {"executions_deleted": executions, "notifications_deleted": notifications, "cutoff": isoformat(cutoff)}


def prune_audit(now: datetime, retention_days: int, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Any]:
    """Delete audit events created before `now - retention_days` (0 days: none, they are kept forever).

    Returns {"audit_events_deleted", "audit_cutoff"} (the cutoff as ISO-8601, None when kept forever).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if retention_days == 0:
        return {"audit_events_deleted": 0, "audit_cutoff": None}
    cutoff = cutoff_for(now, retention_days)
    ids_query = select(AuditEvent.id).where(AuditEvent.created_at < cutoff)
    return {"audit_events_deleted": _delete_in_batches(ids_query, AuditEvent, batch_size),
            "audit_cutoff": isoformat(cutoff)}


def _old_read_notification_ids(cutoff: datetime) -> Any:
    return select(Notification.id).where(Notification.read.is_(True), Notification.created_at < cutoff)


def _old_execution_ids(cutoff: datetime) -> Any:
    one_time_marker = exists().where(
        Task.id == Execution.task_id,
        Task.schedule_type == ScheduleType.ONE_TIME.value,
        Task.run_at == Execution.scheduled_for,
    ).correlate(Execution)
    return select(Execution.id).where(
        Execution.created_at < cutoff,
        Execution.status != Status.RUNNING.value,
        ~and_(Execution.trigger != Trigger.MANUAL.value, one_time_marker),
    )


def _detach_notifications(execution_ids: list[int]) -> None:
    """Clear the link from surviving notifications (the same as ON DELETE SET NULL, but explicit)."""
    db.session.execute(
        update(Notification).where(Notification.execution_id.in_(execution_ids)).values(execution_id=None),
        execution_options={"synchronize_session": False},
    )


def _delete_in_batches(ids_query: Any, model: Any, batch_size: int, before_delete: Any = None) -> int:
    deleted = 0
    while True:
        ids = list(db.session.scalars(ids_query.order_by(model.id).limit(batch_size)))
        if not ids:
            return deleted
        try:
            if before_delete is not None:
                before_delete(ids)
            result = db.session.execute(delete(model).where(model.id.in_(ids)),
                                        execution_options={"synchronize_session": False})
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        deleted += max(result.rowcount or 0, 0)  # 0 when a concurrent prune got there first
        if len(ids) < batch_size:
            return deleted


def run_prune() -> dict[str, Any]:
    """RQ job entry point (scheduled hourly by the dispatcher): prune by LOG_RETENTION_DAYS, and the
    audit trail by AUDIT_RETENTION_DAYS.

    LOG_RETENTION_DAYS of 0 or less turns the log prune off; AUDIT_RETENTION_DAYS of 0 keeps every
    audit event.
    """
    from scheduler.worker import worker_app
    from chime.timeutil import utcnow

    app = worker_app()
    with app.app_context():
        try:
            now = utcnow()
            audit = prune_audit(now, int(app.config["AUDIT_RETENTION_DAYS"]))
            days = int(app.config["LOG_RETENTION_DAYS"])
            if days <= 0:
                return {"skipped": True, "reason": "LOG_RETENTION_DAYS is 0 or less: log retention is off", **audit}
            report = {**prune(now, days), **audit}
            log.info("Log retention (%s days): %s", days, report)
            return report
        finally:
            db.session.remove()
