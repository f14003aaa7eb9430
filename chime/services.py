"""Use-cases shared by the API, the admin and the CLI; they join the caller's unit of work.

No use-case commits: each flushes into the caller's transaction (``with unit_of_work():`` in a
view, a CLI command or a job, :mod:`chime.unit_of_work`), so several form one transaction.
The database is the source of truth. Once a task change is committed, its pending occurrence
in Redis is replaced (an effect registered with ``after_commit``, never run for a rolled-back
change); if Redis is down the change still stands and the reconciler puts the occurrence in
place later.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from redis.exceptions import RedisError
from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError

from chime import audit, lifecycle, rules
from chime import occurrence as occ
from chime.triggers import Schedule, first_fire_at, missed_fire_times
from chime.errors import ConflictError, ForbiddenError, NotFoundError, UnavailableError, ValidationError
from chime.extensions import db, get_redis
from chime.models import Execution, Level, Notification, NotifyPolicy, Role, ScheduleType, Status, Task, Trigger
from chime.timeutil import utcnow
from chime.unit_of_work import after_commit, unit_of_work
from chime.schemas.task import WRITABLE, task_to_dict, validate_task

log = logging.getLogger(__name__)
Row = TypeVar("Row")

DEFAULT_NOTIFICATION_GROUP_SECONDS = 600.0
NOTIFY_LEVELS = {
    NotifyPolicy.ALWAYS.value: {Level.INFO, Level.SUCCESS, Level.WARNING, Level.ERROR},
    NotifyPolicy.ON_FAILURE.value: {Level.WARNING, Level.ERROR},
    NotifyPolicy.NEVER.value: set(),
}


def get_row(model: type[Row], row_id: int) -> Row:
    """Return the row of `model` (Task, Execution, Notification) with that id, or raise NotFoundError
    naming it ("No execution with id 7 was found"): the one fetch-or-404 of the API, the admin and the CLI."""
    row = db.session.get(model, row_id)
    if row is None:
        raise NotFoundError(model.__name__.lower(), row_id)
    return row


def get_task(task_id: int) -> Task:
    """Return the task or raise NotFoundError."""
    return get_row(Task, task_id)


def current_fields(task: Task) -> dict[str, Any]:
    """Return the writable fields of a task, as validate_task merges them for a PATCH."""
    fields = {name: getattr(task, name) for name in WRITABLE if name != "depends_on"}
    fields["depends_on"] = [parent.id for parent in task.parents]
    return fields


def audit_fields(task: Task) -> dict[str, Any]:
    """The task's definition as the audit trail keeps it: its writable fields, JSON-ready as the API shows them."""
    shown = task_to_dict(task)
    return {name: value for name, value in shown.items() if name in WRITABLE}


def schedule_of(task: Task) -> Schedule:
    """Return the pure schedule description of a task."""
    return Schedule(
        schedule_type=task.schedule_type,
        timezone=task.timezone,
        run_at=task.run_at,
        cron=task.cron,
        interval_seconds=task.interval_seconds,
        start_at=task.start_at,
        end_at=task.end_at,
        anchor_at=task.created_at,
    )


def create_task(payload: Any, *, allow_shell: bool, now: datetime | None = None,
                audit_details: Mapping[str, Any] | None = None) -> Task:
    """Validate and store a new task, then schedule its first occurrence; audited as `create`
    (`audit_details`, e.g. {"via": "import"}, say how it came)."""
    fields = validate_task(payload, allow_shell=allow_shell)
    task = Task(created_at=now or utcnow())
    _apply(task, fields)
    save_task_row(task)
    sync_schedule(task, now=now)
    audit.record("create", "task", task.id, task.name, after=audit_fields(task), details=audit_details)
    return task


def update_task(task: Task, payload: Any, *, partial: bool, allow_shell: bool,
                audit_details: Mapping[str, Any] | None = None) -> Task:
    """Validate and apply a PUT (partial=False) or PATCH; replace the pending occurrence; audited as
    `update` with the changed fields before and after."""
    fields = validate_task(payload, current=current_fields(task) if partial else None, allow_shell=allow_shell)
    before = audit_fields(task)
    _apply(task, fields)
    task.version = (task.version or 1) + 1
    task.updated_at = utcnow()
    save_task_row(task)
    sync_schedule(task)
    old, new = audit.changed_fields(before, audit_fields(task))
    audit.record("update", "task", task.id, task.name, before=old, after=new, details=audit_details)
    return task


def toggle_task(task: Task, enabled: bool | None = None) -> Task:
    """Flip (or set) `enabled` and add or remove the pending occurrence; audited as `enable`/`disable`."""
    was_enabled = bool(task.enabled)
    task.enabled = (not task.enabled) if enabled is None else enabled
    task.version = (task.version or 1) + 1
    task.updated_at = utcnow()
    sync_schedule(task)
    audit.record("enable" if task.enabled else "disable", "task", task.id, task.name,
                 before={"enabled": was_enabled}, after={"enabled": bool(task.enabled)})
    return task


def delete_task(task: Task) -> None:
    """Delete a task that no other task depends on, and drop its pending occurrence."""
    if task.children:
        names = ", ".join(f"{child.name!r} (id {child.id})" for child in task.children)
        raise ConflictError(f"Task {task.id} cannot be deleted: tasks depend on it: {names}")
    audit.record("delete", "task", task.id, task.name, before=audit_fields(task))
    remove_task(task)


def remove_task(task: Task) -> None:
    """Delete a task (its dependants' links to it go too) and drop its pending occurrence once committed;
    the callers check and audit (delete_task, chime.controls' detach and bulk delete)."""
    task_id = task.id
    db.session.delete(task)
    db.session.flush()
    after_commit(lambda: _unschedule(task_id))


def run_task_now(task: Task, *, now: datetime | None = None, args: Any = None, allow_shell: bool = False) -> str:
    """Enqueue one MANUAL run at once, enabled or not; return the RQ job id.

    `args` (None: the task's own) replace the task's arguments for this run and its retries only; they are
    validated as the task's would be (run_args: a ValidationError names each bad one) and the run's row
    keeps them. Audited as `run_now` once queued: the run cannot be taken back, so its event commits at
    once (or with the caller's unit of work, when there is one).
    """
    now = now or utcnow()
    if args is not None:
        require_role_to_override_args(audit.current_actor())
    override = None if args is None else run_args(task, args, allow_shell=allow_shell)
    occurrence = occ.Occurrence.of(task, now, trigger=Trigger.MANUAL.value, args=override)
    try:
        job_id = occ.push_now(get_redis(), occurrence, now) or occurrence.job_id
    except RedisError as error:
        raise UnavailableError("Redis is unavailable, so the task could not be queued; nothing was changed") from error
    details: dict[str, Any] = {"job_id": job_id}
    if override is not None:
        details["args"] = override
    with unit_of_work():
        audit.record("run_now", "task", task.id, task.name, details=details)
    return job_id


def require_role_to_override_args(actor: audit.Actor) -> None:
    """Arguments chosen for one run are an edit of what the task does (a shell command, a URL and its
    headers): only a role that may edit tasks may choose them; an operator runs the task as defined."""
    if not actor.role.includes(Role.ADMIN):
        raise ForbiddenError("Running a task with other arguments needs the admin role (it changes what the "
                             "task does); an operator may run it with its own arguments")


def retry_run(execution: Execution, *, now: datetime | None = None) -> str:
    """Queue the next attempt of a FAILED run's occurrence at once (trigger RETRY, attempt + 1, the run's
    overridden arguments if it had any); return its RQ job id. Audited as `retry` once queued.

    Only the latest attempt of its occurrence, FAILED, of a task that still exists and is enabled, may be
    retried (ConflictError otherwise: still running or retrying, already retried, retry already queued).
    A retry of it the schedule holds (a lost run's) runs now instead of later: never twice.
    """
    now = now or utcnow()
    task = _retryable_task(execution)
    occurrence = lifecycle.retry_of(task, execution)
    try:
        job_id = occ.push_retry_now(get_redis(), occurrence, now)
    except RedisError as error:
        raise UnavailableError("Redis is unavailable, so the retry could not be queued; nothing was changed") from error
    if job_id is None:
        raise ConflictError(f"Run {execution.id} already has a retry queued or running (job {occurrence.job_id})")
    with unit_of_work():
        audit.record("retry", "execution", execution.id, execution.task_name,
                     details={"job_id": job_id, "attempt": occurrence.attempt, "task_id": task.id})
    return job_id


def _retryable_task(execution: Execution) -> Task:
    """The task whose failed run `execution` may be retried now; ConflictError says why it may not."""
    if execution.status != Status.FAILED:
        raise ConflictError(f"Run {execution.id} is {execution.status}: only a failed run can be retried")
    latest = latest_attempt(execution)
    if latest.id != execution.id:
        raise ConflictError(f"Run {execution.id} was already retried: attempt {latest.attempt} is run {latest.id} "
                            f"({latest.status})")
    task = db.session.get(Task, execution.task_id) if execution.task_id is not None else None
    if task is None:
        raise ConflictError(f"Run {execution.id} cannot be retried: its task was deleted")
    if not task.enabled:
        raise ConflictError(f"Run {execution.id} cannot be retried: task {task.id} is disabled (enable it, or run it now)")
    return task


def latest_attempt(execution: Execution) -> Execution:
    """The latest recorded attempt of `execution`'s occurrence (itself when none came after it)."""
    if execution.task_id is None:
        return execution
    return db.session.scalar(select(Execution).where(
        Execution.task_id == execution.task_id, Execution.scheduled_for == execution.scheduled_for)
        .order_by(Execution.attempt.desc()).limit(1)) or execution


def may_retry(execution: Execution) -> bool:
    """Say whether `execution` may be retried now (what retry_run checks before it queues anything)."""
    try:
        _retryable_task(execution)
    except ConflictError:
        return False
    return True


def run_args(task: Task, args: Any, *, allow_shell: bool) -> dict[str, Any]:
    """Check arguments for one run of `task` exactly as its own are checked (the task schema's path, as a
    PATCH of `args` would be: the job must be enabled, shell only if allowed); return them clean."""
    try:
        return validate_task({"args": args}, current=current_fields(task), allow_shell=allow_shell)["args"]
    except ValidationError as error:
        fields = {key: reason for key, reason in error.fields.items() if key == "job" or key.startswith("args")}
        raise ValidationError(fields or error.fields) from None


def first_occurrence(task: Task, now: datetime, *, has_run: bool | None = None) -> occ.Occurrence | None:
    """Return the occurrence that should be pending for a task now, if any.

    `has_run` (for ONE_TIME tasks) saves the query when the caller already knows it.
    """
    if not task.enabled:
        return None
    if task.schedule_type == ScheduleType.ONE_TIME.value:
        if has_run if has_run is not None else has_scheduled_run(task):
            return None
    due_at = first_fire_at(schedule_of(task), now)
    if due_at is None:
        return None
    return occ.Occurrence.of(task, due_at)


def has_scheduled_run(task: Task) -> bool:
    """Say whether a ONE_TIME task already has a non-manual run for its run_at."""
    query = select(
        exists().where(
            Execution.task_id == task.id,
            Execution.scheduled_for == task.run_at,
            Execution.trigger != Trigger.MANUAL.value,
        )
    )
    return bool(db.session.execute(query).scalar())


def sync_schedule(task: Task, *, now: datetime | None = None) -> None:
    """Set the task's next_run_at; once the caller commits, make Redis hold exactly the pending
    occurrence the task should have."""
    now = now or utcnow()
    if task.enabled:  # an enabled task is never paused: enabling it, however, ends its pause
        task.paused_reason = task.paused_by = task.paused_at = task.resume_at = None
    occurrence = first_occurrence(task, now)
    task.next_run_at = occurrence.scheduled_for if occurrence else None
    db.session.flush()
    task_id = task.id
    after_commit(lambda: _replace_pending(task_id, occurrence, now))


def _replace_pending(task_id: int, occurrence: occ.Occurrence | None, now: datetime) -> None:
    try:
        dropped = occ.replace_pending(get_redis(), task_id, occurrence)
    except RedisError as error:
        log.warning("Task %s saved but not scheduled (Redis: %s); the reconciler will schedule it", task_id, error)
        return
    record_dropped_overdue(task_id, dropped, now)


def record_dropped_overdue(task_id: int, dropped_id: str | None, now: datetime) -> None:
    """Record as SKIPPED an overdue occurrence that a committed change took out of the schedule before
    it was dispatched (the scheduler was behind or down): accepted, so never silently gone. Its own
    unit of work: what Redis dropped is known only after the change was committed."""
    due = occ.parse_job_id(dropped_id) if dropped_id else None
    if due is None or due.scheduled_for > now:
        return
    with unit_of_work():
        task = db.session.get(Task, task_id)
        if task is None:
            return
        count = missed_fire_times(schedule_of(task), due.scheduled_for, now)[0] if not task.enabled else 1
        record_skip(task, due.scheduled_for, lifecycle.dropped_overdue_skip(disabled=not task.enabled,
                                                                            overdue_count=count), now=now)


NEXT_RUN_BATCH = 5000


def save_next_run_times(next_run_at: Mapping[int, datetime | None]) -> None:
    """Write tasks' next_run_at (shown by the API), in id order and in batches; the caller commits.

    A task deleted meanwhile has nothing to save.
    """
    ids = sorted(next_run_at)
    existing: set[int] = set()
    for start in range(0, len(ids), NEXT_RUN_BATCH):
        existing |= set(db.session.scalars(select(Task.id).where(Task.id.in_(ids[start:start + NEXT_RUN_BATCH]))))
    rows = [{"id": task_id, "next_run_at": next_run_at[task_id]} for task_id in ids if task_id in existing]
    for start in range(0, len(rows), NEXT_RUN_BATCH):
        db.session.execute(update(Task), rows[start:start + NEXT_RUN_BATCH])


def _unschedule(task_id: int) -> None:
    try:
        occ.replace_pending(get_redis(), task_id, None)
    except RedisError as error:
        log.warning("Task %s deleted; its occurrence stays in Redis until the reconciler runs (%s)", task_id, error)


def _apply(task: Task, fields: dict[str, Any]) -> None:
    depends_on = fields.pop("depends_on", [])
    with db.session.no_autoflush:
        parents = _parents(task, depends_on)
        for name, value in fields.items():
            setattr(task, name, value)
        task.parents = parents


def _parents(task: Task, parent_ids: list[int]) -> list[Task]:
    if task.id is not None and task.id in parent_ids:
        raise ValidationError({"depends_on": "a task cannot depend on itself"})
    parents = db.session.scalars(select(Task).where(Task.id.in_(parent_ids))).all() if parent_ids else []
    missing = sorted(set(parent_ids) - {p.id for p in parents})
    if missing:
        raise ValidationError({"depends_on": "no task with id " + ", ".join(map(str, missing))})
    if task.id is not None and _reaches(parents, task.id):
        raise ValidationError({"depends_on": "this would create a dependency cycle"})
    return sorted(parents, key=lambda p: p.id)


def _reaches(parents: list[Task], target_id: int) -> bool:
    """Say whether `target_id` is an ancestor of (or among) the given parents."""
    seen: set[int] = set()
    stack = list(parents)
    while stack:
        node = stack.pop()
        if node.id == target_id:
            return True
        if node.id in seen:
            continue
        seen.add(node.id)
        stack.extend(node.parents)
    return False


def save_task_row(task: Task) -> None:
    """Add the task to the caller's transaction (flushed, so it has its id); a taken name is a ConflictError."""
    query = select(Task.id).where(Task.name == task.name)
    if task.id is not None:
        query = query.where(Task.id != task.id)
    with db.session.no_autoflush:
        clash = db.session.scalar(query)
    if clash is not None:
        raise ConflictError(f"A task named {task.name!r} already exists (id {clash})", {"name": "already taken"})
    db.session.add(task)
    try:
        db.session.flush()
    except IntegrityError as error:
        raise ConflictError(f"A task named {task.name!r} already exists", {"name": "already taken"}) from error


def add_notification(
    task: Task | None, level: Level, title: str, message: str = "", execution: Execution | None = None,
) -> Notification | None:
    """Record a notification unless the task's `notify` policy mutes its level."""
    policy = task.notify if task is not None else NotifyPolicy.ALWAYS.value
    if level not in NOTIFY_LEVELS.get(policy, set()):
        return None
    if task is not None and group_notification(task.id, level, title[:300], message, execution):
        return None
    notification = Notification(
        task_id=task.id if task else None,
        execution_id=execution.id if execution else None,
        level=level.value, title=title[:300], message=message,
    )
    db.session.add(notification)
    return notification


def notification_group_seconds() -> float:
    """The bell's grouping window (NOTIFICATION_GROUP_SECONDS, default 600; 0 turns grouping off)."""
    from flask import current_app, has_app_context

    value = current_app.config.get("NOTIFICATION_GROUP_SECONDS") if has_app_context() else None
    return float(value if value is not None else DEFAULT_NOTIFICATION_GROUP_SECONDS)


def group_notification(task_id: int, level: Level, title: str, message: str, execution: Execution | None,
                       now: datetime | None = None) -> bool:
    """Fold a repeat into the task's unread notification of the same level and title made within the
    window: one UPDATE (count + 1, the latest message, run and time); False when none matched (insert).
    Two workers recording the same task are serialised by the task row's lock (the executor's FOR UPDATE;
    SQLite's single writer), so a repeat finds the row the other one inserted."""
    window = notification_group_seconds()
    if window <= 0:
        return False
    now = now or utcnow()
    newest = (select(func.max(Notification.id))
              .where(Notification.task_id == task_id, Notification.read.is_(False), Notification.level == level.value,
                     Notification.title == title, Notification.created_at >= now - timedelta(seconds=window))
              .scalar_subquery())
    matched = db.session.execute(
        update(Notification).where(Notification.id == newest)
        .values(count=Notification.count + 1, message=message, last_at=now,
                execution_id=execution.id if execution is not None else Notification.execution_id)
        .execution_options(synchronize_session=False)).rowcount
    return bool(matched)


def notify(task: Task | None, notice: lifecycle.Notice | None, execution: Execution | None = None
           ) -> Notification | None:
    """Add the notification a lifecycle decision asks for (None: it asks for none)."""
    if notice is None:
        return None
    return add_notification(task, notice.level, notice.title, notice.message, execution)


def record_skip(task: Task, scheduled_for: datetime, skip: lifecycle.Outcome, *, trigger: str = Trigger.SCHEDULE,
                attempt: int = 1, now: datetime | None = None) -> Execution | None:
    """Record an occurrence that did not run (missed, overlapping, dropped) as SKIPPED, with the
    notification its reason deserves; idempotent (None when it is already recorded)."""
    execution = lifecycle.skipped_row(task, scheduled_for, skip, trigger=trigger, attempt=attempt,
                                      now=now or utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(execution)
    except IntegrityError:
        return None
    previous_status = task.last_status
    lifecycle.note_on_task(task, execution.status)
    notify(task, lifecycle.notice_of(task.name, execution, skip.reason, task.timezone), execution)
    rules.note_run(task, execution, previous_status)
    return execution


def mark_notification_read(notification_id: int) -> Notification:
    """Mark one notification read."""
    notification = get_row(Notification, notification_id)
    notification.read = True
    db.session.flush()
    return notification


def mark_all_notifications_read() -> int:
    """Mark every unread notification read; return how many were."""
    from sqlalchemy import update

    result = db.session.execute(update(Notification).where(Notification.read.is_(False)).values(read=True))
    return result.rowcount
