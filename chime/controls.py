"""Run controls on tasks: pause (with a reason, and a time to resume by itself), resume, bulk actions,
clone, and deleting a task others depend on by first removing it from their dependencies.

Use-cases like chime.services: they flush into the caller's unit of work and add their audit events
to it (chime.audit); the caller commits. A paused task is a disabled task with a reason (the
invariant "an enabled task is never paused" is kept by services.sync_schedule), so nothing else in
the engine needs to know about pauses: the scheduler only resumes the ones whose time has come
(:func:`resume_due_tasks`).

Audit: pause, resume (the engine's automatic ones too, with details {"automatic": true}), clone
(as create with details {"cloned_from": id}), and one event per task of a bulk action, named
bulk_<action> (bulk_enable, bulk_pause, bulk_run_now, bulk_delete, ...) with details {"bulk": n}.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import count
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import select

from chime import audit, services
from chime import occurrence as occ
from chime.errors import ConflictError, UnavailableError, ValidationError
from chime.extensions import db, get_redis
from chime.models import Task, Trigger
from chime.policy import should_resume
from chime.schemas.control import BulkInput, BulkResult, CloneInput, PauseInput, validate
from chime.schemas.task import MAX_NAME_LENGTH, validate_task
from chime.timeutil import isoformat, utcnow

RESUME_BATCH = 100  # tasks resumed per scheduler pass; the rest on the next pass, a second later
COPY_SUFFIX = " (copy)"


# --------------------------------------------------------------------------- pause and resume


def pause_task(task: Task, payload: Any, *, now: datetime | None = None) -> Task:
    """Pause a task: disable it (its pending occurrence goes) with a reason, until resume_at if given.

    Raises ValidationError for a missing or too long reason, or a resume_at not in the future.
    """
    data = validate(PauseInput, payload)
    now = now or utcnow()
    _check_resume_at(data.resume_at, now)
    _check_pausable([task])
    _pause(task, data.reason, data.resume_at, now)
    audit.record("pause", "task", task.id, task.name, details=_pause_details(task))
    return task


def resume_task(task: Task, *, now: datetime | None = None) -> Task:
    """Resume a task: clear its pause and enable it (its schedule restarts as enabling does)."""
    details = _pause_details(task)
    _set_enabled(task, True, now or utcnow())
    audit.record("resume", "task", task.id, task.name, details=details)
    return task


def resume_due_tasks(now: datetime) -> list[int]:
    """Resume the paused tasks whose resume_at has come (as the engine); return their ids.

    The scheduler calls this every second: one query on the resume_at index, which finds nothing
    almost always.
    """
    # Locked (Postgres; SQLite's writer lock serialises anyway) so a pause someone saves meanwhile waits
    # and then stands, instead of being overwritten by this resume; rows locked by another writer wait
    # for the next pass.
    query = (select(Task).where(Task.resume_at <= now).order_by(Task.resume_at, Task.id).limit(RESUME_BATCH)
             .with_for_update(skip_locked=True))
    resumed = []
    for task in db.session.scalars(query).all():
        if not should_resume(resume_at=task.resume_at, enabled=task.enabled, now=now):
            continue
        details = {**_pause_details(task), "automatic": True}
        _set_enabled(task, True, now)
        audit.record("resume", "task", task.id, task.name, details=details, actor=audit.ENGINE)
        resumed.append(task.id)
    return resumed


def _check_pausable(tasks: Sequence[Task]) -> None:
    """A pause ends by enabling the task, so only an enabled (or already paused) task may be paused: a
    task someone disabled must not come back on when a pause over it ends (ConflictError naming them)."""
    disabled = [task for task in tasks if not task.enabled and task.paused_at is None]
    if disabled:
        raise ConflictError("Nothing was paused: " + ", ".join(map(describe, disabled))
                            + (" is" if len(disabled) == 1 else " are") + " disabled, not running; a pause "
                            "would enable it when it ends. Leave it disabled, or enable it first.")


def _check_resume_at(resume_at: datetime | None, now: datetime) -> None:
    if resume_at is not None and resume_at <= now:
        raise ValidationError({"resume_at": "must be in the future"})


def _pause(task: Task, reason: str, resume_at: datetime | None, now: datetime) -> None:
    task.paused_reason = reason
    task.paused_by = audit.current_actor().label[:100]
    task.paused_at = now
    task.resume_at = resume_at
    _set_enabled(task, False, now)


def _pause_details(task: Task) -> dict[str, Any]:
    return {"reason": task.paused_reason, "paused_by": task.paused_by, "resume_at": isoformat(task.resume_at)}


def _set_enabled(task: Task, enabled: bool, now: datetime) -> None:
    task.enabled = enabled
    task.version = (task.version or 1) + 1
    task.updated_at = now
    services.sync_schedule(task, now=now)


# --------------------------------------------------------------------------- bulk actions


def run_bulk(payload: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """Apply one action to many tasks, all or nothing; return one result per task (BulkResult).

    Every id must name a task (ValidationError naming the unknown ones); pause needs a reason;
    delete refuses (ConflictError naming them) tasks that a task outside the selection depends on.
    Nothing changes unless every task can take the action. run_now queues at once (Redis down: 503).
    """
    data = validate(BulkInput, payload)
    now = now or utcnow()
    tasks = load_tasks(data.ids)
    _check_bulk(data, tasks, now)
    act = BULK_ACTIONS[data.action]
    results: list[dict[str, Any]] = []
    for task in tasks:
        task_id, name = task.id, task.name
        try:
            outcome, job_id, details = act(task, data, now)
        except UnavailableError:
            if not results:  # nothing was queued: nothing happened
                raise
            results += _not_queued(tasks[len(results):])  # queued runs cannot be taken back: keep their events
            break
        audit.record(f"bulk_{data.action}", "task", task_id, name, details={"bulk": len(tasks), **details})
        results.append({"id": task_id, "name": name, "outcome": outcome, "job_id": job_id})
    return BulkResult.of(action=data.action, results=results)


def _not_queued(tasks: Sequence[Task]) -> list[dict[str, Any]]:
    return [{"id": task.id, "name": task.name, "outcome": "not_queued", "job_id": None} for task in tasks]


def load_tasks(ids: Sequence[int]) -> list[Task]:
    """The tasks with these ids, in that order (each once); ValidationError names the ids of no task."""
    unique = list(dict.fromkeys(ids))
    found = {task.id: task for task in db.session.scalars(select(Task).where(Task.id.in_(unique)))}
    missing = [task_id for task_id in unique if task_id not in found]
    if missing:
        raise ValidationError({"ids": "no task with id " + ", ".join(map(str, missing))},
                              f"Nothing was changed: no task with id {', '.join(map(str, missing))}")
    return [found[task_id] for task_id in unique]


def _check_bulk(data: BulkInput, tasks: list[Task], now: datetime) -> None:
    if data.action == "pause" and data.reason is None:
        raise ValidationError({"reason": "required to pause"})
    if data.action != "pause" and (data.reason is not None or data.resume_at is not None):
        raise ValidationError({"reason" if data.reason is not None else "resume_at": "only for action pause"})
    _check_resume_at(data.resume_at, now)
    if data.action == "pause":
        _check_pausable(tasks)
    if data.action == "delete":
        selected = {task.id for task in tasks}
        blocked = {task: [c for c in task.children if c.id not in selected] for task in tasks}
        blocked = {task: children for task, children in blocked.items() if children}
        if blocked:
            raise ConflictError("Nothing was deleted: other tasks depend on "
                                + "; ".join(f"{describe(task)} (needed by {', '.join(map(describe, children))})"
                                            for task, children in blocked.items())
                                + ". Remove those dependencies first, or select the dependants too.")


def describe(task: Task) -> str:
    """A task as messages name it: 'name' (id 3)."""
    return f"{task.name!r} (id {task.id})"


Outcome = tuple[str, "str | None", dict[str, Any]]


def _bulk_enable(task: Task, _data: BulkInput, now: datetime) -> Outcome:
    _set_enabled(task, True, now)
    return "enabled", None, {}


def _bulk_disable(task: Task, _data: BulkInput, now: datetime) -> Outcome:
    _set_enabled(task, False, now)
    return "disabled", None, {}


def _bulk_pause(task: Task, data: BulkInput, now: datetime) -> Outcome:
    _pause(task, data.reason or "", data.resume_at, now)
    return "paused", None, _pause_details(task)


def _bulk_resume(task: Task, _data: BulkInput, now: datetime) -> Outcome:
    details = _pause_details(task)
    _set_enabled(task, True, now)
    return "resumed", None, details


def _bulk_run_now(task: Task, _data: BulkInput, now: datetime) -> Outcome:
    occurrence = occ.Occurrence.of(task, now, trigger=Trigger.MANUAL.value)
    try:
        job_id = occ.push_now(get_redis(), occurrence, now) or occurrence.job_id
    except RedisError as error:
        raise UnavailableError("Redis is unavailable, so the runs could not be queued") from error
    return "queued", job_id, {"job_id": job_id}


def _bulk_delete(task: Task, _data: BulkInput, _now: datetime) -> Outcome:
    services.remove_task(task)
    return "deleted", None, {}


BULK_ACTIONS: dict[str, Callable[[Task, BulkInput, datetime], Outcome]] = {
    "enable": _bulk_enable, "disable": _bulk_disable, "pause": _bulk_pause, "resume": _bulk_resume,
    "run_now": _bulk_run_now, "delete": _bulk_delete,
}


# --------------------------------------------------------------------------- clone


def clone_task(task: Task, payload: Any, *, allow_shell: bool, now: datetime | None = None) -> Task:
    """Store a copy of a task's definition (dependencies too), DISABLED so it does not run twice
    until someone reviews and enables it; named `name`, else the first free '<name> (copy)',
    '<name> (copy 2)', ... (ConflictError when the given name is taken)."""
    data = validate(CloneInput, {} if payload is None else payload)
    now = now or utcnow()
    fields = validate_task({**services.current_fields(task), "enabled": False,
                            "name": data.name or free_copy_name(task.name, _names_like(task.name))},
                           allow_shell=allow_shell)
    fields.pop("depends_on")
    copy = Task(created_at=now, updated_at=now, **fields)
    copy.parents = list(task.parents)
    services.save_task_row(copy)
    services.sync_schedule(copy, now=now)
    audit.record("create", "task", copy.id, copy.name, after=services.audit_fields(copy),
                 details={"cloned_from": task.id})
    return copy


def free_copy_name(name: str, taken: set[str]) -> str:
    """The first of '<name> (copy)', '<name> (copy 2)', ... not in `taken`, cut to the name limit."""
    for number in count(1):
        suffix = COPY_SUFFIX if number == 1 else f" (copy {number})"
        candidate = name[:MAX_NAME_LENGTH - len(suffix)].rstrip() + suffix
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable")  # count() never ends


def _names_like(name: str) -> set[str]:
    stem = name[:MAX_NAME_LENGTH - len(" (copy 1000000)")].rstrip()
    return set(db.session.scalars(select(Task.name).where(Task.name.startswith(stem, autoescape=True))))


# --------------------------------------------------------------------------- deleting a parent


def dependants_conflict(task: Task, how: str) -> ConflictError:
    """The refusal to delete a task others depend on: names them, and `how` to remove the dependency."""
    return ConflictError(f"Task {task.id} cannot be deleted: tasks depend on it: "
                         f"{', '.join(map(describe, task.children))}. {how}")


def detach_dependants(task: Task) -> list[int]:
    """Remove the task from each dependant's parents (an update of each, audited) so that it can be
    deleted; return the dependants' ids. The caller deletes it in the same unit of work."""
    children = list(task.children)
    for child in children:
        before = [parent.id for parent in child.parents]
        child.parents = [parent for parent in child.parents if parent.id != task.id]
        child.version = (child.version or 1) + 1
        child.updated_at = utcnow()
        services.sync_schedule(child)
        audit.record("update", "task", child.id, child.name, before={"depends_on": before},
                     after={"depends_on": [parent.id for parent in child.parents]},
                     details={"detached_from": task.id})
    db.session.flush()
    db.session.expire(task, ["children"])
    return [child.id for child in children]
