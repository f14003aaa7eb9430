"""The watchdog: the engine's time-based events (`missed`, `overrun`, `scheduler_down`, `no_workers`) and
the reconciler's `reconcile_repaired`, decided from state read elsewhere and emitted through chime.rules.

The scheduler never notices its own death: the alerts worker (scheduler.watchdog, from its periodic
sweep) reads what Redis and the database show -- the lock holder's heartbeat, the task workers
registered, the oldest jobs waiting on the task queues, the tasks whose next_run_at has passed, the runs
still RUNNING -- and hands it to :func:`watch`. The detectors below are pure functions of that state and
`now`; :func:`watch` keeps each episode's state in the database (settings rows `watchdog.*`) and writes
it in the same transaction as the events it emits, so every event goes out once per episode, also
across a restart of the noticing process.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from chime import rules
from chime.alerts import seconds_setting
from chime.enums import Status
from chime.extensions import db
from chime.models import AlertRule, Execution, Setting, Task
from chime.timeutil import as_utc, isoformat, local_text
from chime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

SCHEDULER_KEY, WORKERS_KEY = "watchdog.scheduler", "watchdog.workers"
MISSED_KEY, OVERRUN_KEY = "watchdog.missed", "watchdog.overrun"
SCHEDULER_UP, WORKERS_BACK = "scheduler_up", "workers_back"  # the resolved events (when the rules know them)
QUERY_LIMIT = 500  # at most this many due tasks / running runs are judged per pass (oldest first)
MISSED_MEMORY = timedelta(days=2)  # an alerted occurrence is remembered this long (longer while still seen due)
MISSED_REMEMBERED = 5000  # at most this many alerted occurrences are remembered, the newest (besides those seen due)
WATCH_GAP_INTERVALS = 3  # an absence's start is trusted only if the watchdog looked within this many intervals
MISSED_SLACK_SECONDS = 10  # a run is missed after its grace, and never sooner than this after its due time
# (the scheduler saves next_run_at about a second after the move, and a free worker takes it at once)

SETTINGS = {  # app config key -> (environment variable, default)
    "WATCHDOG_INTERVAL_SECONDS": ("CHIME_WATCHDOG_INTERVAL_SECONDS", 5.0),
    "WATCHDOG_MISSING_SCHEDULER_SECONDS": ("CHIME_WATCHDOG_MISSING_SCHEDULER_SECONDS", 60.0),
    "WATCHDOG_NO_WORKERS_SECONDS": ("CHIME_WATCHDOG_NO_WORKERS_SECONDS", 30.0),
    "OVERRUN_AFTER_SECONDS": ("CHIME_OVERRUN_AFTER_SECONDS", 0.0),  # 0: a run overruns past its own timeout
}


def setting(name: str) -> float:
    """One watchdog setting: the app's config, else the environment, else its default (seconds)."""
    return seconds_setting(SETTINGS, name)


# --------------------------------------------------------------------------- pure detectors


def absent_since(state: dict[str, Any], key: str, now: datetime, max_gap_seconds: float) -> datetime:
    """When an absence the watchdog is timing began: state[key] as it last saved it, unless its last look
    (state["seen_at"]; the start itself in a state saved without one) is more than `max_gap_seconds` before
    `now` (or after it): the watchdog was stopped (with everything else, say), knows nothing of the time
    between, and counts the absence from `now`."""
    seen_at = parse(state.get("seen_at")) or parse(state.get(key))  # a state saved without seen_at: its start
    if seen_at is None or not 0 <= (now - seen_at).total_seconds() <= max_gap_seconds:
        return now
    return parse(state.get(key)) or now


def scheduler_step(state: dict[str, Any], status: str, now: datetime, missing_after_seconds: float,
                   max_gap_seconds: float = math.inf) -> tuple[str | None, dict[str, Any]]:
    """One look at the scheduler: (event or None, the episode's new state).

    `status` is scheduler.health's: "ok", "stale" (the lock holder's beat is too old: down at once) or
    "missing" (no lock holder's beat at all: none ever started, or its heartbeat expired). Missing is
    down once the watchdog has seen it missing for `missing_after_seconds` without a gap longer than
    `max_gap_seconds` between two looks, so processes starting together raise nothing (also after a
    full stop that left a `missing_since` behind). `scheduler_down` once per episode; SCHEDULER_UP when it ends.
    """
    down = bool(state.get("down"))
    if status == "ok":
        return (SCHEDULER_UP if down else None), {"down": False}
    if down:
        return None, state
    missing_since = absent_since(state, "missing_since", now, max_gap_seconds)
    if status == "stale" or (now - missing_since).total_seconds() >= missing_after_seconds:
        return "scheduler_down", {"down": True, "since": isoformat(now)}
    return None, {"down": False, "missing_since": isoformat(missing_since), "seen_at": isoformat(now)}


def workers_step(state: dict[str, Any], task_workers: int, now: datetime, after_seconds: float,
                 max_gap_seconds: float = math.inf) -> tuple[str | None, dict[str, Any]]:
    """One look at the task workers: `no_workers` once none has been registered for `after_seconds`
    (a restart in between raises nothing; nor does a `none_since` left by a look more than
    `max_gap_seconds` ago); WORKERS_BACK when one is registered again."""
    down = bool(state.get("down"))
    if task_workers > 0:
        return (WORKERS_BACK if down else None), {"down": False}
    if down:
        return None, state
    none_since = absent_since(state, "none_since", now, max_gap_seconds)
    if (now - none_since).total_seconds() >= after_seconds:
        return "no_workers", {"down": True, "since": isoformat(now)}
    return None, {"down": False, "none_since": isoformat(none_since), "seen_at": isoformat(now)}


@dataclass(frozen=True)
class Due:
    """An occurrence that should have started: its task, when it was due and the task's grace."""

    task_id: int
    scheduled_for: datetime
    grace_seconds: int
    where: str  # "schedule": never dispatched (next_run_at passed); "queue": dispatched, not taken


def missed(due: Iterable[Due], started: set[tuple[int, datetime]], alerted: set[tuple[int, datetime]],
           now: datetime) -> list[Due]:
    """The occurrences past their grace (at least MISSED_SLACK_SECONDS) that no run has started (no
    execution row for them) and that were not alerted already (`alerted`: the (task id, occurrence) pairs
    sent before); one per occurrence."""
    found: dict[tuple[int, datetime], Due] = {}
    for item in due:
        key = (item.task_id, item.scheduled_for)
        wait = max(item.grace_seconds, MISSED_SLACK_SECONDS)
        if item.scheduled_for + timedelta(seconds=wait) >= now or key in started:
            continue
        if key in alerted or key in found:
            continue
        found[key] = item
    return sorted(found.values(), key=lambda d: (d.scheduled_for, d.task_id))


def remembered(value: dict[str, Any], due: Iterable[Due], now: datetime) -> set[tuple[int, datetime]]:
    """The alerted (task id, occurrence) pairs a `missed` state row holds ({task id: [ISO instants]}; the
    earlier form, {task id: one ISO instant}, reads as that one pair) that are still worth remembering:
    every one still seen due, and of the others the newest MISSED_REMEMBERED due within MISSED_MEMORY."""
    pairs = {(int(task_id), at) for task_id, texts in value.items()
             for text in ([texts] if isinstance(texts, str) else texts) if (at := parse(text)) is not None}
    recent = sorted((pair for pair in pairs if pair[1] > now - MISSED_MEMORY), key=lambda pair: pair[1])
    return set(recent[-MISSED_REMEMBERED:]) | (pairs & {(d.task_id, d.scheduled_for) for d in due})


def remembered_value(pairs: Iterable[tuple[int, datetime]]) -> dict[str, list[str]]:
    """The `missed` state row's value for these alerted pairs: {task id: [ISO instants, oldest first]}."""
    value: dict[str, list[str]] = {}
    for task_id, at in sorted(pairs):
        value.setdefault(str(task_id), []).append(str(isoformat(at)))
    return value


def overrun_threshold_seconds(timeout_seconds: int, configured_seconds: float,
                              rule_seconds: float | None = None) -> float:
    """A run overruns after its rule's own time when the rule sets one; else after the configured time when
    one is set (above 0); else after the run's own timeout."""
    if rule_seconds:
        return float(rule_seconds)
    return configured_seconds if configured_seconds > 0 else float(timeout_seconds)


@dataclass(frozen=True)
class Running:
    """A run still RUNNING, watched for one rule (rule_id; None when no rule asks for `overrun`, the
    threshold then being the global one)."""

    execution_id: int
    task_id: int | None
    started_at: datetime
    threshold_seconds: float
    rule_id: int | None = None

    @property
    def key(self) -> str:
        """What the once-per-run-and-rule state remembers: "<execution id>:<rule id or ->"."""
        return f"{self.execution_id}:{'-' if self.rule_id is None else self.rule_id}"


@dataclass(frozen=True)
class OverrunRule:
    """A rule that sends `overrun` for a task (the task's own, else a default one), and its own threshold."""

    rule_id: int
    after_seconds: int | None


def watched_runs(execution_id: int, task_id: int | None, started_at: datetime, timeout_seconds: int,
                 rules: Iterable[OverrunRule], configured_seconds: float) -> list[Running]:
    """One run as the overrun detector watches it: once per rule that sends its `overrun`, each with that
    rule's threshold (falling back to the global one); once with the global threshold when no rule does."""
    watched = [Running(execution_id, task_id, started_at,
                       overrun_threshold_seconds(timeout_seconds, configured_seconds, rule.after_seconds), rule.rule_id)
               for rule in rules]
    return watched or [Running(execution_id, task_id, started_at,
                               overrun_threshold_seconds(timeout_seconds, configured_seconds))]


def overruns(running: Iterable[Running], alerted: set[str], now: datetime) -> list[Running]:
    """The runs still RUNNING past their threshold and not alerted yet (once per run and rule: `alerted`
    holds the keys of those already sent)."""
    return [r for r in running if r.key not in alerted and (now - r.started_at).total_seconds() > r.threshold_seconds]


REPAIR_KEYS = ("pending_restored", "missed_restored", "one_time_recovered", "stale_replaced",
               "orphans_removed", "executions_lost", "retries_enqueued")


def repaired_counts(report: dict[str, Any]) -> dict[str, int]:
    """The repairs a reconcile report counts (only the non-zero ones); empty when it repaired nothing."""
    return {key: int(report.get(key) or 0) for key in REPAIR_KEYS if int(report.get(key) or 0) > 0}


def parse(value: str | None) -> datetime | None:
    return as_utc(datetime.fromisoformat(value)) if value else None


# --------------------------------------------------------------------------- the pass (reads the database)


@dataclass
class Observation:
    """What the noticing process read from Redis for one pass."""

    scheduler_status: str  # scheduler.health: ok | stale | missing
    task_workers: int
    queued: list[Due] = field(default_factory=list)  # the oldest occurrences waiting on the task queues


def watch(seen: Observation, now: datetime) -> list[str]:
    """One watchdog pass in one transaction: decide every event, emit it, keep each episode's state."""
    events: list[str] = []
    with unit_of_work():
        events += watch_engine(seen, now)
        events += watch_missed(seen, now)
        events += watch_overruns(now)
    return events


def watch_engine(seen: Observation, now: datetime) -> list[str]:
    events = []
    steps = ((SCHEDULER_KEY, scheduler_step, seen.scheduler_status, "WATCHDOG_MISSING_SCHEDULER_SECONDS"),
             (WORKERS_KEY, workers_step, seen.task_workers, "WATCHDOG_NO_WORKERS_SECONDS"))
    max_gap_seconds = WATCH_GAP_INTERVALS * setting("WATCHDOG_INTERVAL_SECONDS")
    for key, step, value, grace_name in steps:
        row = state_row(key)
        event, new_state = step(dict(row.value or {}), value, now, setting(grace_name), max_gap_seconds)
        if new_state != row.value:
            row.value = new_state
        if event is not None and emit_engine(event, row.value, now):
            events.append(event)
    return events


ENGINE_TEXTS = {
    "scheduler_down": ("The scheduler is down", "No scheduler has dispatched since {since}: runs that are due do not "
                       "start. Noticed by the alerts worker."),
    SCHEDULER_UP: ("The scheduler is back", "A scheduler dispatches again (down since {since})."),
    "no_workers": ("No worker is running", "No task worker has been registered since {since}: queued runs wait."),
    WORKERS_BACK: ("A worker is back", "A task worker is registered again."),
}


def emit_engine(event: str, state: dict[str, Any], now: datetime) -> bool:
    """Emit an engine event; a resolved event only when the rules know it (else only logged)."""
    if event not in rules.EVENTS:
        log.info("Watchdog: %s (the rules have no such event; not sent)", event)
        return False
    title, message = ENGINE_TEXTS[event]
    since = state.get("since") or isoformat(now)
    rules.emit(event, details={"title": title, "message": message.format(since=local_text(parse(since), "UTC")),
                               "since": since, "resolved": event in (SCHEDULER_UP, WORKERS_BACK)}, now=now)
    return True


def watch_missed(seen: Observation, now: datetime) -> list[str]:
    """`missed` for each occurrence past its grace that never started, once per occurrence."""
    due = due_in_schedule(now) + seen.queued
    if not due:
        return []
    row = state_row(MISSED_KEY)
    alerted = remembered(dict(row.value or {}), due, now)
    found = missed(due, started_occurrences(due), alerted, now)
    tasks = {t.id: t for t in db.session.scalars(select(Task).where(Task.id.in_({d.task_id for d in found})))}
    for item in found:
        task = tasks.get(item.task_id)
        if task is None:
            continue
        alerted.add((item.task_id, item.scheduled_for))
        rules.emit("missed", task=task, details=missed_details(task, item, seen, now), now=now)
    new_value = remembered_value(alerted)
    if new_value != row.value:
        row.value = new_value
    return ["missed"] * len(found)


def missed_details(task: Task, item: Due, seen: Observation, now: datetime) -> dict[str, Any]:
    cause = ("the scheduler is down" if seen.scheduler_status != "ok" and item.where == "schedule"
             else "no task worker is running" if seen.task_workers == 0
             else "every worker is busy" if item.where == "queue" else "it was not dispatched")
    late = int((now - item.scheduled_for).total_seconds())
    return {"message": f"The run due at {local_text(item.scheduled_for, task.timezone)} had not started "
                       f"{late} s later (grace {item.grace_seconds} s): {cause}.",
            "scheduled_for": isoformat(item.scheduled_for), "grace_seconds": item.grace_seconds,
            "late_seconds": late, "cause": cause, "where": item.where}


def due_in_schedule(now: datetime) -> list[Due]:
    """Enabled tasks whose next_run_at has passed (the indexed column; the oldest QUERY_LIMIT)."""
    rows = db.session.execute(
        select(Task.id, Task.next_run_at, Task.misfire_grace_seconds)
        .where(Task.enabled.is_(True), Task.next_run_at.is_not(None), Task.next_run_at < now)
        .order_by(Task.next_run_at).limit(QUERY_LIMIT)).all()
    return [Due(task_id, as_utc(at), grace, "schedule") for task_id, at, grace in rows]


def started_occurrences(due: list[Due]) -> set[tuple[int, datetime]]:
    """The (task, occurrence) pairs among `due` that have an execution row (any status, any attempt)."""
    earliest = min(d.scheduled_for for d in due)
    rows = db.session.execute(select(Execution.task_id, Execution.scheduled_for).where(
        Execution.task_id.in_({d.task_id for d in due}), Execution.scheduled_for >= earliest)).all()
    return {(task_id, as_utc(at)) for task_id, at in rows}


def watch_overruns(now: datetime) -> list[str]:
    """`overrun` once per run still RUNNING past its threshold, and per rule when rules set their own."""
    rows = db.session.execute(
        select(Execution.id, Execution.task_id, Execution.started_at, Task.timeout_seconds)
        .join(Task, Task.id == Execution.task_id)
        .where(Execution.status == Status.RUNNING.value, Execution.started_at.is_not(None))
        .order_by(Execution.id).limit(QUERY_LIMIT)).all()
    row = state_row(OVERRUN_KEY)
    running_ids = {str(r[0]) for r in rows}
    alerted = {key for key in (row.value or {}).get("sent", []) if key.split(":")[0] in running_ids}  # forget ended runs
    configured = setting("OVERRUN_AFTER_SECONDS")
    rules_of = overrun_rules({task_id for _, task_id, _, _ in rows})
    running = [run for i, t, s, timeout in rows
               for run in watched_runs(i, t, as_utc(s), timeout, rules_of.get(t, []), configured)]
    found = overruns(running, alerted, now)
    for run in found:
        emit_overrun(run, now)
        alerted.add(run.key)
    new_value = {"sent": sorted(alerted)}
    if new_value != row.value:
        row.value = new_value
    return ["overrun"] * len(found)


def overrun_rules(task_ids: set[int]) -> dict[int, list[OverrunRule]]:
    """Per task, the enabled rules that send its `overrun` (its own rules when it has any, else the
    default ones: chime.rules.rules_for) with their own thresholds."""
    if not task_ids:
        return {}
    found = db.session.scalars(select(AlertRule).where(
        AlertRule.enabled.is_(True), or_(AlertRule.task_id.in_(task_ids), AlertRule.task_id.is_(None)))
        .order_by(AlertRule.id)).all()
    defaults = [rule for rule in found if rule.task_id is None]
    return {task_id: [OverrunRule(rule.id, rule.overrun_after_seconds)
                      for rule in rules.rules_for([r for r in found if r.task_id == task_id], defaults)
                      if "overrun" in rule.events]
            for task_id in task_ids}


def emit_overrun(run: Running, now: datetime) -> None:
    """The `overrun` event of one run; for one rule only (`rule_ids`) when a rule's threshold raised it."""
    execution = db.session.get(Execution, run.execution_id)
    task = db.session.get(Task, run.task_id)
    minutes = int((now - run.started_at).total_seconds() // 60)
    details: dict[str, Any] = {
        "message": f"Run {run.execution_id} started at {local_text(run.started_at, task.timezone)} is still "
                   f"running after {minutes} min (threshold {int(run.threshold_seconds)} s).",
        "started_at": isoformat(run.started_at), "threshold_seconds": run.threshold_seconds}
    if run.rule_id is not None:
        details["rule_ids"] = [run.rule_id]
    rules.emit("overrun", task=task, execution=execution, now=now, details=details)


def state_row(key: str) -> Setting:
    """The episode state row (locked on Postgres, so two noticing processes cannot both emit)."""
    query = select(Setting).where(Setting.key == key)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update()
    row = db.session.scalar(query)
    if row is None:
        row = Setting(key=key, value={})
        db.session.add(row)
        db.session.flush()
    return row


def report_repairs(report: dict[str, Any], now: datetime) -> bool:
    """The reconciler's pass: `reconcile_repaired` with its counts when it repaired anything."""
    counts = repaired_counts(report)
    if not counts:
        return False
    text = ", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in counts.items())
    try:
        with unit_of_work():
            rules.emit("reconcile_repaired", now=now, details={
                "message": f"The reconciler repaired the schedule ({text}).", "counts": counts,
                "started_at": report.get("started_at")})
    except SQLAlchemyError as error:  # the repairs stand; only their alert is lost (logged)
        log.warning("Reconcile: could not record the reconcile_repaired event (%s)", str(error).splitlines()[0])
        return False
    return True
