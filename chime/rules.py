"""Alert rules: which events go to which channels, with noise control; the single entry point for events.

A rule belongs to a task (task_id) or is a default (task_id NULL): a task with an enabled rule of its own
uses only its own rules; every other task, and the engine's events, use the default rules.

The hot path stays cheap (a transactional outbox): the executor's record transaction adds at most one
small AlertOutbox row (:func:`note_run`), and only for a run that can raise an event (a failure, a retry,
a skip, or a success after failures) while a rule could match. Anything else calls :func:`emit` inside its
own unit of work. The alerts worker (scheduler.alerts) calls :func:`drain` every beat: it reads a batch of outbox
rows and all that deciding them needs without a write lock, then, in one short transaction, deletes the rows,
applies the rules (:func:`decide`, pure) with noise control and calls chime.alerts.enqueue_delivery -- so
nothing accepted is lost, nothing is sent twice, and the executor's writes seldom wait for it.

Noise control, per rule, task and event (AlertState):
- grouping: an event within `group_window_seconds` of the last one sent is counted; when the window ends
  one summary goes out with the count ("3 more ...", payload `count`);
- a task that stays failing (`failed` after a failed run, `failing` past its N) alerts again only when the
  rule says `repeat_every_hours`, at most that often;
- a task muted until a time (tasks.alerts_muted_until), a channel muted (channels.muted_until) and
  maintenance (settings `alerts.maintenance`) suppress: nothing is sent and the state's suppressed_count
  counts what was held back.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, insert, literal, or_, select

from chime.database import begin_read_only, on_postgres
from chime.enums import Status
from chime.errors import ValidationError
from chime.extensions import db
from chime.models import AlertOutbox, AlertRule, AlertState, Execution, Setting, Task
from chime.timeutil import as_utc, isoformat, local_text, utcnow
from chime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

TASK_EVENTS = ("failed", "retrying", "failing", "recovered", "skipped", "missed", "overrun")
ENGINE_EVENTS = ("scheduler_down", "scheduler_up", "no_workers", "workers_back", "reconcile_repaired")
EVENTS = TASK_EVENTS + ENGINE_EVENTS
STREAK_EVENTS = frozenset({"failed", "failing"})  # the ones that repeat only when asked while a task stays failing
RUN_EVENTS = {Status.FAILED.value: "failed", Status.RETRYING.value: "retrying", Status.SKIPPED.value: "skipped",
              Status.SUCCESS.value: "recovered"}
MAINTENANCE_KEY = "alerts.maintenance"
MAINTENANCE_KEPT = 50  # the switch remembers this many past periods, so a late drain judges an event by its time
DRAIN_BATCH = 50  # rows per drain transaction: short, so SQLite's write lock is not held for long

SEND, GROUP, SUPPRESS, QUIET = "send", "group", "suppress", "quiet"


# --------------------------------------------------------------------------- pure decisions


def decide(*, now: datetime, last_sent_at: datetime | None, window_seconds: float, continuing: bool,
           repeat_every_hours: float | None, muted: bool) -> str:
    """What to do with one event of one rule: SEND it, GROUP it (counted into the window's summary),
    SUPPRESS it (muted, maintenance) or stay QUIET (a task that stays failing, no repeat asked or not due)."""
    if muted:
        return SUPPRESS
    if continuing:
        if repeat_every_hours and (last_sent_at is None
                                   or now - last_sent_at >= timedelta(hours=repeat_every_hours)):
            return SEND
        return QUIET
    if last_sent_at is not None and now - last_sent_at < timedelta(seconds=window_seconds):
        return GROUP
    return SEND


def summary_due(*, now: datetime, last_sent_at: datetime | None, window_seconds: float, pending_count: int) -> bool:
    """Whether a window's grouped events are due as one summary (the window since the last send ended)."""
    return pending_count > 0 and (last_sent_at is None or now - last_sent_at >= timedelta(seconds=window_seconds))


def events_of(event: str, streak: int, threshold: int) -> list[tuple[str, bool]]:
    """The (event, continuing) pairs one outbox event raises: a final failure is `failed` (continuing
    after the first of a streak) and, from the N-th consecutive one, `failing` (continuing after the N-th)."""
    if event != "failed":
        return [(event, False)]
    pairs = [("failed", streak > 1)]
    if streak >= threshold:
        pairs.append(("failing", streak > threshold))
    return pairs


def rules_for(task_rules: list[AlertRule], default_rules: list[AlertRule]) -> list[AlertRule]:
    """A task's own enabled rules when it has any, else the default ones."""
    own = [rule for rule in task_rules if rule.enabled]
    return own or [rule for rule in default_rules if rule.enabled]


# --------------------------------------------------------------------------- writing events


def emit(event: str, *, task: Task | None = None, execution: Execution | None = None,
         details: dict[str, Any] | None = None, now: datetime | None = None) -> AlertOutbox:
    """The single entry point for anything that wants an alert sent by the rules.

    emit(event, *, task=None, execution=None, details=None, now=None) -> AlertOutbox
      event: one of EVENTS (`missed`, `overrun`, `scheduler_down`, `no_workers`, `reconcile_repaired`,
             or a run event); a ValidationError for any other name.
      task / execution: what it is about (None for an engine event: it goes to the default rules' channels).
      details: JSON-able; `title` and `message` (str) are used as the alert's texts when given, everything
             else is passed on in the payload under `details`.
      now: when it happened (aware UTC; default now).
    Adds one outbox row to the caller's unit of work (call it inside `with unit_of_work():`); the alerts
    worker evaluates the rules within a few seconds of the commit. It never sends anything itself.
    """
    if event not in EVENTS:
        raise ValidationError({"event": f"must be one of {', '.join(EVENTS)}"})
    row = AlertOutbox(task_id=task.id if task is not None else (execution.task_id if execution is not None else None),
                      execution_id=execution.id if execution is not None else None, event=event,
                      details=dict(details or {}), created_at=now or utcnow())
    db.session.add(row)
    return row


def run_event(status: str, previous_status: str | None) -> str | None:
    """The event a run's recorded status may raise (a success only after a failed or retrying run)."""
    if status == Status.SUCCESS.value and previous_status not in (Status.FAILED.value, Status.RETRYING.value):
        return None
    return RUN_EVENTS.get(status)


OUTBOX = AlertOutbox.__table__
RUN_ROW_COLUMNS = ("task_id", "execution_id", "status", "event", "created_at")


def note_run(task: Task, execution: Execution, previous_status: str | None) -> None:
    """In the executor's record transaction: one small outbox row when this run may raise an event and an
    enabled rule (the task's own or a default one) exists; nothing otherwise.

    One statement, `INSERT INTO alert_outbox ... SELECT <the row> WHERE EXISTS (<an enabled rule of the task
    or a default one>)`: the rule check and the write are one round trip, read in the transaction that
    records the run (as the separate SELECT was), and a run that raises no event costs no statement."""
    event = run_event(str(execution.status), previous_status)
    if event is None:
        return
    row = select(*(literal(value, OUTBOX.c[name].type) for name, value in zip(RUN_ROW_COLUMNS, (
        task.id, execution.id, str(execution.status), event, utcnow()))))
    rule_exists = exists().where(AlertRule.enabled.is_(True),
                                 or_(AlertRule.task_id == task.id, AlertRule.task_id.is_(None)))
    db.session.execute(insert(OUTBOX).from_select(RUN_ROW_COLUMNS, row.where(rule_exists)))


# --------------------------------------------------------------------------- maintenance and mutes


def maintenance() -> dict[str, Any]:
    """The maintenance switch: {"on": bool, "reason": str, "since": iso or None}."""
    row = db.session.get(Setting, MAINTENANCE_KEY)
    value = dict(row.value) if row is not None else {}
    return {"on": bool(value.get("on")), "reason": value.get("reason") or "", "since": value.get("since")}


def set_maintenance(on: bool, reason: str = "", now: datetime | None = None) -> dict[str, Any]:
    """Turn maintenance (every alert muted) on or off; the caller audits and commits. The row also keeps
    the last MAINTENANCE_KEPT periods ({"periods": [[from, until], ...]}), so an event that happened during
    one is held back when the alerts worker drains it after maintenance ended."""
    row = db.session.get(Setting, MAINTENANCE_KEY)
    now = now or utcnow()
    old = dict(row.value) if row is not None else {}
    still_on = on and old.get("on") and old.get("since")  # the same period goes on (its reason may change)
    value = {"on": bool(on), "reason": reason if on else "",
             "since": (old["since"] if still_on else isoformat(now)) if on else None,
             "periods": (old.get("periods") or []) if on else ended_periods(old, now)}
    if row is None:
        db.session.add(Setting(key=MAINTENANCE_KEY, value=value))
    else:
        row.value = value
    db.session.flush()
    return {key: value[key] for key in ("on", "reason", "since")}


def ended_periods(value: dict[str, Any], now: datetime) -> list[list[str]]:
    """The switch's past periods, with the one `value` has on ending at `now` (at most MAINTENANCE_KEPT, newest last)."""
    periods = [list(period) for period in value.get("periods") or []]
    if value.get("on") and value.get("since"):
        periods.append([value["since"], isoformat(now)])
    return periods[-MAINTENANCE_KEPT:]


def in_maintenance_at(value: dict[str, Any], at: datetime) -> bool:
    """Whether maintenance was on at the instant `at`, as the switch's row `value` remembers it."""
    if value.get("on") and value.get("since") and datetime.fromisoformat(value["since"]) <= at:
        return True
    return any(datetime.fromisoformat(start) <= at < datetime.fromisoformat(end)
               for start, end in value.get("periods") or [])


def maintenance_value() -> dict[str, Any]:
    row = db.session.get(Setting, MAINTENANCE_KEY)
    return dict(row.value) if row is not None else {}


# --------------------------------------------------------------------------- the alerts worker's drain
#
# A batch is drained in two steps, so the write transaction stays short (on SQLite it holds the one write
# lock every worker's claim and record wait for):
#   1. read_plan, a read-only transaction (no write lock on SQLite): the outbox rows, their tasks, runs and
#      rules, failure streaks, the payloads, and which windows' summaries are due -- every read a row needs;
#   2. one write transaction: claim the rows (a row another drain took is dropped), read the rules' states
#      in one statement, decide each event (pure) and write only what changed -- a quiet decision (a task
#      that stays failing) writes nothing.


@dataclass(frozen=True)
class RuleView:
    """The columns of a rule the drain uses, read before its write transaction."""

    id: int
    enabled: bool
    events: tuple[str, ...]
    channel_ids: tuple[int, ...]
    failing_threshold: int
    group_window_seconds: float
    repeat_every_hours: float | None

    @classmethod
    def of(cls, rule: AlertRule) -> RuleView:
        return cls(rule.id, bool(rule.enabled), tuple(rule.events or ()), tuple(int(c) for c in rule.channel_ids or ()),
                   rule.failing_threshold, rule.group_window_seconds, rule.repeat_every_hours)


@dataclass
class Item:
    """One outbox row, read; `occurred_at`: when it happened (a run's end, else when it was written), by which
    mutes and maintenance judge it, however late it is drained."""

    event: str
    task: Task | None
    execution: Execution | None
    details: dict[str, Any]
    occurred_at: datetime


@dataclass(frozen=True)
class Candidate:
    """One event of one rule that one outbox row raises, with all its decision needs but the rule's state."""

    outbox_id: int
    rule: RuleView
    event: str
    continuing: bool
    task_id: int | None
    task_muted_until: datetime | None
    occurred_at: datetime
    payload: dict[str, Any]

    @property
    def state_key(self) -> str:
        return state_key(self.rule.id, self.task_id, self.event)


@dataclass
class Plan:
    """What the read step found: the outbox rows (`full`: the batch was full, more may wait), their candidates,
    the maintenance switch, and the states whose window's summary is due."""

    outbox_ids: list[int]
    candidates: list[Candidate]
    switch: dict[str, Any]
    summary_state_ids: list[int]
    full: bool


def drain(now: datetime | None = None, batch: int = DRAIN_BATCH, rounds: int = 20) -> int:
    """Evaluate the outbox, `batch` rows per transaction, up to `rounds` transactions, and send due
    summaries; return how many deliveries were made. Call it outside a unit of work: it runs its own."""
    made = 0
    for _ in range(rounds):
        done, more = drain_batch(now or utcnow(), batch)
        made += done
        if not more:
            break
    return made


def drain_batch(now: datetime, batch: int) -> tuple[int, bool]:
    """One batch of the drain: (deliveries made, whether the outbox may hold more)."""
    plan = read_plan(now, batch)
    if not plan.outbox_ids and not plan.summary_state_ids:
        return 0, False  # nothing to write: no write transaction at all
    made, claimed = write_plan(plan, now)
    # a full batch another drain took (Postgres, two alerts workers) ends this drain: reading the same oldest
    # rows again would only repeat the reads while that drain works
    return made, plan.full and claimed > 0


def write_plan(plan: Plan, now: datetime) -> tuple[int, int]:
    """Step 2, one write transaction: claim the plan's rows, decide their candidates, send due summaries;
    return (deliveries made, outbox rows claimed)."""
    made = 0
    with unit_of_work():
        claimed = claim(plan.outbox_ids)
        mine = [candidate for candidate in plan.candidates if candidate.outbox_id in claimed]
        states = states_of(mine, plan.summary_state_ids)
        for candidate in mine:
            made += apply(candidate, states, now, in_maintenance_at(plan.switch, candidate.occurred_at))
        made += send_summaries(plan.summary_state_ids, now, in_maintenance_at(plan.switch, now))
    return made, len(claimed)


def read_plan(now: datetime, batch: int) -> Plan:
    """Step 1, in a read-only transaction: the oldest `batch` outbox rows and everything deciding them needs
    (inside a transaction the caller left open, the reads join it and leave it open)."""
    began = not db.session().in_transaction()
    begin_read_only()
    try:
        rows = db.session.execute(select(AlertOutbox.id, AlertOutbox.task_id, AlertOutbox.execution_id,
                                         AlertOutbox.event, AlertOutbox.status, AlertOutbox.details,
                                         AlertOutbox.created_at).order_by(AlertOutbox.id).limit(batch)).all()
        task_ids = {row.task_id for row in rows if row.task_id is not None}
        execution_ids = {row.execution_id for row in rows if row.execution_id is not None}
        tasks = {task.id: task for task in db.session.scalars(select(Task).where(Task.id.in_(task_ids)))} \
            if task_ids else {}
        executions = {run.id: run for run in db.session.scalars(select(Execution).where(Execution.id.in_(execution_ids)))} \
            if execution_ids else {}
        own, defaults = rules_of(set(tasks)) if rows else ({}, [])
        candidates = [candidate for row in rows
                      for candidate in candidates_of(row, tasks, executions, own, defaults)]
        return Plan(outbox_ids=[row.id for row in rows], candidates=candidates, switch=maintenance_value(),
                    summary_state_ids=due_summaries(now, DRAIN_BATCH), full=len(rows) == batch)
    finally:
        if began:
            db.session.rollback()


def rules_of(task_ids: set[int]) -> tuple[dict[int, list[RuleView]], list[RuleView]]:
    """The rules of these tasks (by task id) and the default ones, in id order, in one read."""
    query = select(AlertRule).order_by(AlertRule.id)
    query = query.where(or_(AlertRule.task_id.in_(task_ids), AlertRule.task_id.is_(None))) if task_ids else \
        query.where(AlertRule.task_id.is_(None))
    own: dict[int, list[RuleView]] = {}
    defaults: list[RuleView] = []
    for rule in db.session.scalars(query):
        (defaults if rule.task_id is None else own.setdefault(rule.task_id, [])).append(RuleView.of(rule))
    return own, defaults


def candidates_of(row: Any, tasks: dict[int, Task], executions: dict[int, Execution],
                  own: dict[int, list[RuleView]], defaults: list[RuleView]) -> list[Candidate]:
    """Every (rule, event) one outbox row raises, with its payload (a task gone since uses the default rules)."""
    task = tasks.get(row.task_id) if row.task_id is not None else None
    execution = executions.get(row.execution_id) if row.execution_id is not None else None
    ended_at = execution.finished_at if row.status is not None and execution is not None else None
    item = Item(str(row.event), task, execution, dict(row.details or {}), as_utc(ended_at or row.created_at))
    if item.event == "recovered" and not previous_final_failed(item):
        return []
    chosen = rules_for(own.get(task.id, []) if task is not None else [], defaults)
    if "rule_ids" in item.details:  # meant for some rules only (an overrun past a rule's own threshold)
        chosen = [rule for rule in chosen if rule.id in item.details["rule_ids"]]
    cap = max([2, *(rule.failing_threshold for rule in chosen)]) + 1  # past it, only "still failing" matters
    streak = failure_streak(item, cap) if item.event == "failed" else 0
    return [Candidate(row.id, rule, event, continuing, task.id if task is not None else None,
                      task.alerts_muted_until if task is not None else None, item.occurred_at,
                      payload_of(event, item, streak))
            for rule in chosen for event, continuing in events_of(item.event, streak, rule.failing_threshold)
            if event in rule.events]


def claim(outbox_ids: list[int]) -> set[int]:
    """Step 2 begins: take the rows (those another drain took meanwhile are not found) and delete them."""
    if not outbox_ids:
        return set()
    query = select(AlertOutbox.id).where(AlertOutbox.id.in_(outbox_ids))
    if on_postgres():
        query = query.with_for_update(skip_locked=True)  # a row another drain holds is that drain's
    claimed = set(db.session.scalars(query))
    if claimed:
        db.session.execute(delete(AlertOutbox).where(AlertOutbox.id.in_(claimed)))
    return claimed


def state_key(rule_id: int, task_id: int | None, event: str) -> str:
    return f"{rule_id}:{task_id if task_id is not None else '-'}:{event}"


def states_of(candidates: list[Candidate], summary_state_ids: list[int]) -> dict[str, AlertState]:
    """The existing states of these candidates' (rule, task, event), by key, in one read. On Postgres it also
    locks the states whose summaries are due, all in id order: two drains never take them in opposite orders."""
    keys = {candidate.state_key for candidate in candidates}
    postgres = on_postgres()
    if not keys and not (postgres and summary_state_ids):
        return {}
    query = select(AlertState).where(or_(AlertState.key.in_(keys), AlertState.id.in_(summary_state_ids))
                                     if postgres else AlertState.key.in_(keys))
    if postgres:
        query = query.order_by(AlertState.id).with_for_update()
    return {state.key: state for state in db.session.scalars(query) if state.key in keys}


def apply(candidate: Candidate, states: dict[str, AlertState], now: datetime, in_maintenance: bool) -> int:
    """Decide one candidate against its state and write the outcome (nothing for a quiet one)."""
    state = states.get(candidate.state_key)
    rule = candidate.rule
    choice = decide(now=now, last_sent_at=state.last_sent_at if state is not None else None,
                    window_seconds=rule.group_window_seconds, continuing=candidate.continuing,
                    repeat_every_hours=rule.repeat_every_hours,
                    muted=muted(candidate.task_muted_until, None, candidate.occurred_at, in_maintenance))
    if choice == QUIET:
        return 0
    if state is None:
        state = states[candidate.state_key] = new_state(candidate)
    if choice == SUPPRESS:
        state.suppressed_count += 1
        return 0
    made = 0
    if choice == SEND and state.pending_count:  # the last window's grouped events go out first, as its summary
        made += send_summary(state, rule, task_label(candidate.payload), candidate.task_muted_until, now,
                             in_maintenance)
    state.last_payload = candidate.payload  # what a window's summary repeats
    if choice == GROUP:
        state.pending_count += 1
        state.pending_since = state.pending_since or now
        return made
    state.last_sent_at = now
    return made + deliver(rule, candidate.task_muted_until, candidate.payload, now, in_maintenance, state,
                          candidate.occurred_at)


def task_label(payload: dict[str, Any]) -> str:
    """How a summary names the task an event's payload is about."""
    task = payload.get("task")
    return repr(task["name"]) if isinstance(task, dict) and "name" in task else "Chime"


def new_state(candidate: Candidate) -> AlertState:
    state = AlertState(key=candidate.state_key, rule_id=candidate.rule.id, task_id=candidate.task_id,
                       event=candidate.event, pending_count=0, suppressed_count=0)
    db.session.add(state)
    return state


def muted(task_muted_until: datetime | None, channel: Any, at: datetime, in_maintenance: bool) -> bool:
    """Whether an event that happened at `at` is held back: maintenance then, or a mute of its task
    (`task_muted_until`) or of the channel that lasts past it."""
    if in_maintenance:
        return True
    if task_muted_until is not None and task_muted_until > at:
        return True
    return channel is not None and channel.muted_until is not None and channel.muted_until > at


def deliver(rule: RuleView, task_muted_until: datetime | None, payload: dict[str, Any], now: datetime,
            in_maintenance: bool, state: AlertState, occurred_at: datetime | None = None) -> int:
    """One delivery per enabled channel of the rule not muted when the event happened (`occurred_at`, default
    `now`; a muted channel's is counted as suppressed)."""
    from chime import alerts  # imported here so this module loads without the channels' modules (tests)
    from chime.models import Channel

    made = 0
    for channel_id in rule.channel_ids:
        channel = db.session.get(Channel, int(channel_id))
        if channel is None or not channel.enabled:
            continue
        if muted(task_muted_until, channel, occurred_at or now, in_maintenance):
            state.suppressed_count += 1
            continue
        if alerts.enqueue_delivery(channel, payload, now=now) is not None:
            made += 1
    return made


def send_summaries(state_ids: list[int], now: datetime, in_maintenance: bool) -> int:
    """Send one "N more" summary for each of these states (read_plan found their window ended with grouped
    events; each is judged again here, under the write lock)."""
    if not state_ids:
        return 0
    query = select(AlertState).where(AlertState.id.in_(state_ids))
    if on_postgres():
        query = query.with_for_update()
    found = {state.id: state for state in db.session.scalars(query)}
    made = 0
    for state in (found[state_id] for state_id in state_ids if state_id in found):
        rule = db.session.get(AlertRule, state.rule_id)
        if rule is None:
            state.pending_count, state.pending_since = 0, None
            continue
        if not summary_due(now=now, last_sent_at=state.last_sent_at, window_seconds=rule.group_window_seconds,
                           pending_count=state.pending_count):
            continue
        task = db.session.get(Task, state.task_id) if state.task_id is not None else None
        made += send_summary(state, RuleView.of(rule), repr(task.name) if task is not None else "Chime",
                             task.alerts_muted_until if task is not None else None, now, in_maintenance)
    return made


def send_summary(state: AlertState, rule: RuleView, label: str, task_muted_until: datetime | None,
                 now: datetime, in_maintenance: bool) -> int:
    """Send the "N more" summary of the state's grouped events (held back when muted) and empty the window."""
    payload = summary_payload(state, label, now)
    state.pending_count, state.pending_since, state.last_sent_at = 0, None, now
    if muted(task_muted_until, None, now, in_maintenance):
        state.suppressed_count += 1
        return 0
    return deliver(rule, task_muted_until, payload, now, in_maintenance, state)


def due_summaries(now: datetime, limit: int) -> list[int]:
    """The ids of the states with grouped events whose window ended (or whose rule is gone), oldest first, at
    most `limit`: judged on a narrow read of every pending state."""
    pending = db.session.execute(
        select(AlertState.id, AlertState.last_sent_at, AlertState.pending_count, AlertRule.group_window_seconds)
        .outerjoin(AlertRule, AlertRule.id == AlertState.rule_id).where(AlertState.pending_count > 0)
        .order_by(AlertState.pending_since, AlertState.id)).all()
    return [state_id for state_id, last_sent_at, count, window in pending
            if window is None or summary_due(now=now, last_sent_at=as_utc(last_sent_at), window_seconds=window,
                                             pending_count=count)][:limit]


# --------------------------------------------------------------------------- history and texts


def failure_streak(item: Item, cap: int) -> int:
    """How many final runs in a row failed, up to this one (since the task's last success), counted up to
    `cap`: the task's latest `cap` final runs are read newest first (ix_executions_task_id_id), never its history."""
    if item.task is None or item.execution is None:
        return 1
    latest = db.session.scalars(select(Execution.status).where(
        Execution.task_id == item.task.id, Execution.id <= item.execution.id,
        Execution.status.in_([Status.SUCCESS.value, Status.FAILED.value])).order_by(Execution.id.desc()).limit(cap))
    streak = 0
    for status in latest:
        if status != Status.FAILED.value:
            break
        streak += 1
    return max(streak, 1)


def previous_final_failed(item: Item) -> bool:
    """A success is `recovered` when the task's last final run before it (success or failure) failed."""
    if item.task is None or item.execution is None:
        return False
    previous = db.session.scalar(select(Execution.status).where(
        Execution.task_id == item.task.id, Execution.id < item.execution.id,
        Execution.status.in_([Status.SUCCESS.value, Status.FAILED.value])).order_by(Execution.id.desc()).limit(1))
    return previous == Status.FAILED.value


TITLES = {"failed": "{name} failed", "retrying": "{name} failed; retrying", "recovered": "{name} recovered",
          "skipped": "{name} skipped", "missed": "{name} missed a run", "overrun": "{name} is overrunning",
          "scheduler_down": "The scheduler is down", "scheduler_up": "The scheduler is back",
          "no_workers": "No worker is running", "workers_back": "Workers are back",
          "reconcile_repaired": "The reconciler repaired the schedule"}


def payload_of(event: str, item: Item, streak: int) -> dict[str, Any]:
    """The event as channels receive it; times in the task's time zone with their offset."""
    task, execution = item.task, item.execution
    name = repr(task.name) if task is not None else (repr(execution.task_name) if execution is not None else "Chime")
    tz = task.timezone if task is not None else "UTC"
    title = str(item.details.get("title") or (
        f"{name} failed {streak} times in a row" if event == "failing" else TITLES.get(event, event).format(name=name)))
    message = str(item.details.get("message") or run_text(execution, tz))
    details = {k: v for k, v in item.details.items() if k not in ("title", "message")}
    return {"event": event, "title": title, "message": message, "count": 1,
            "task": {"id": task.id, "name": task.name} if task is not None else None,
            "task_id": task.id if task is not None else None,
            "execution_id": execution.id if execution is not None else None,
            "status": str(execution.status) if execution is not None else None,
            "attempt": execution.attempt if execution is not None else None,
            "streak": streak or None, "occurred_at": isoformat(item.occurred_at),
            "occurred_local": local_text(item.occurred_at, tz), "details": details or None}


def run_text(execution: Execution | None, tz: str) -> str:
    if execution is None:
        return ""
    text = f"Attempt {execution.attempt} {str(execution.status).lower()} at {local_text(execution.finished_at, tz)}"
    if execution.message:
        text += f": {execution.message}"
    if execution.retry_at is not None:
        text += f". Retry at {local_text(execution.retry_at, tz)}"
    return text


def summary_payload(state: AlertState, label: str, now: datetime) -> dict[str, Any]:
    """The window's summary: the last grouped event, with `count` and a title saying how many more of `label`
    (the task's quoted name, or "Chime")."""
    last = dict(state.last_payload or {"event": state.event})
    count = state.pending_count
    last.update(count=count, summary=True, title=f"{count} more {state.event} alert{'s' if count != 1 else ''} of {label}",
                occurred_at=isoformat(now))
    return last
