"""Alert rules on SQLite and Postgres: which events a run raises, which channels get them, and noise control
(grouping with a count, repeats while failing, mutes and maintenance), through the outbox the executor
writes and the drain the alerts worker runs."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select

from chime import rules
from chime.extensions import db
from chime.models import AlertOutbox, AlertRule, AlertState, Channel, Delivery, Execution, Setting, Task
from chime.unit_of_work import unit_of_work
from tests.engine.helpers import create

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
OCCURRENCE = itertools.count(1)  # each recorded run is its own occurrence


def channel(name: str = "hook", **fields: Any) -> int:
    with unit_of_work():
        row = Channel(name=name, kind="webhook", config={"url": "http://127.0.0.1:9/x"}, secret_names=[], **fields)
        db.session.add(row)
        db.session.flush()
        return row.id


def rule(channel_ids: list[int], events: list[str], task_id: int | None = None, **fields: Any) -> int:
    with unit_of_work():
        row = AlertRule(task_id=task_id, events=events, channel_ids=channel_ids, **fields)
        db.session.add(row)
        db.session.flush()
        return row.id


def run(task_id: int, status: str, at: datetime, message: str = "boom", retry_at: datetime | None = None) -> None:
    """Record one run the way the executor does: the task's previous last status decides, then one outbox row."""
    with unit_of_work():
        task = db.session.get(Task, task_id)
        execution = Execution(task_id=task_id, task_name=task.name, status=status, attempt=1, trigger="SCHEDULE",
                              scheduled_for=T0 - timedelta(days=next(OCCURRENCE)), started_at=at, finished_at=at, duration_ms=5, message=message,
                              retry_at=retry_at)
        db.session.add(execution)
        db.session.flush()
        previous, task.last_status = task.last_status, status
        rules.note_run(task, execution, previous)


def drain(at: datetime) -> None:
    rules.drain(now=at)


def sent(event: str | None = None) -> list[dict[str, Any]]:
    db.session.expire_all()
    rows = db.session.scalars(select(Delivery).order_by(Delivery.id)).all()
    return [row.payload for row in rows if event is None or row.event == event]


def test_a_final_failure_goes_to_the_default_rules_channel_with_the_task_time_zone(app: Any) -> None:
    hook = channel()
    rule([hook], ["failed"])
    task_id = create(name="nightly", timezone="Europe/Berlin")
    run(task_id, "FAILED", T0)
    drain(T0)
    [payload] = sent()
    assert payload["event"] == "failed" and payload["title"] == "'nightly' failed"
    assert payload["task"] == {"id": task_id, "name": "nightly"} and payload["count"] == 1
    assert "2026-11-30 13:00:00 CET (+01:00)" in payload["message"] and "boom" in payload["message"]
    assert db.session.scalar(select(func.count(AlertOutbox.id))) == 0, "the outbox row went with the delivery"


def test_a_task_with_its_own_rule_does_not_use_the_default_one(app: Any) -> None:
    default_hook, own_hook = channel("default"), channel("own")
    rule([default_hook], ["failed"])
    task_id = create(name="own")
    rule([own_hook], ["failed"], task_id=task_id)
    other = create(name="other")
    run(task_id, "FAILED", T0)
    run(other, "FAILED", T0)
    drain(T0)
    by_task = {(p["task_id"], d.channel_id) for p, d in zip(sent(), db.session.scalars(select(Delivery).order_by(Delivery.id)))}
    assert by_task == {(task_id, own_hook), (other, default_hook)}


def test_nothing_is_written_to_the_outbox_without_a_rule_or_for_a_plain_success(app: Any) -> None:
    task_id = create(name="quiet")
    run(task_id, "FAILED", T0)
    assert db.session.scalar(select(func.count(AlertOutbox.id))) == 0
    rule([channel()], ["failed"])
    run(task_id, "SUCCESS", T0)  # previous FAILED: a possible `recovered`
    run(task_id, "SUCCESS", T0)  # a success after a success raises nothing
    assert db.session.scalar(select(func.count(AlertOutbox.id))) == 1


def test_retrying_recovered_and_skipped_are_emitted(app: Any) -> None:
    rule([channel()], ["retrying", "recovered", "skipped", "failed"], group_window_seconds=0)
    task_id = create(name="flaky", timezone="UTC")
    run(task_id, "RETRYING", T0, retry_at=T0 + timedelta(seconds=30, microseconds=224654))
    run(task_id, "FAILED", T0 + timedelta(minutes=1))
    run(task_id, "SUCCESS", T0 + timedelta(minutes=2))
    run(task_id, "SKIPPED", T0 + timedelta(minutes=3), message="parent 'a' has not succeeded")
    drain(T0 + timedelta(minutes=4))
    assert [p["event"] for p in sent()] == ["retrying", "failed", "recovered", "skipped"]
    assert "Retry at 2026-11-30 12:00:30 UTC (+00:00)" in sent("retrying")[0]["message"]
    assert sent("recovered")[0]["title"] == "'flaky' recovered"


def test_a_success_after_a_retry_that_succeeded_is_not_a_recovery(app: Any) -> None:
    rule([channel()], ["recovered"])
    task_id = create(name="retried")
    run(task_id, "SUCCESS", T0)
    run(task_id, "RETRYING", T0)
    run(task_id, "SUCCESS", T0)
    drain(T0)
    assert sent() == []


def test_failing_fires_at_the_nth_failure_in_a_row_and_not_again_while_it_stays_failing(app: Any) -> None:
    rule([channel()], ["failing", "failed"], failing_threshold=3, group_window_seconds=0)
    task_id = create(name="broken")
    for minute in range(5):
        run(task_id, "FAILED", T0 + timedelta(minutes=minute))
    drain(T0 + timedelta(minutes=5))
    assert [(p["event"], p["streak"]) for p in sent()] == [("failed", 1), ("failing", 3)]
    assert sent("failing")[0]["title"] == "'broken' failed 3 times in a row"


def test_an_alert_repeats_while_failing_only_every_n_hours_when_asked(app: Any) -> None:
    rule([channel()], ["failed"], repeat_every_hours=1, group_window_seconds=0)
    task_id = create(name="stuck")
    for minute in (0, 30, 59, 61, 90):
        run(task_id, "FAILED", T0 + timedelta(minutes=minute))
        drain(T0 + timedelta(minutes=minute))
    assert [p["streak"] for p in sent()] == [1, 4], "the first, then once an hour had passed"


def test_repeats_within_the_window_are_grouped_into_one_summary_with_a_count(app: Any) -> None:
    rule([channel()], ["retrying"], group_window_seconds=600)
    task_id = create(name="noisy")
    for second in range(0, 50, 10):
        run(task_id, "RETRYING", T0 + timedelta(seconds=second))
        drain(T0 + timedelta(seconds=second))
    assert [p["count"] for p in sent()] == [1], "the first goes out at once, the other four wait"
    drain(T0 + timedelta(seconds=599))
    assert len(sent()) == 1
    drain(T0 + timedelta(seconds=600))
    first, summary = sent()
    assert summary["count"] == 4 and summary["summary"] is True
    assert summary["title"] == "4 more retrying alerts of 'noisy'"


def test_a_muted_task_a_muted_channel_and_maintenance_suppress_and_count(app: Any) -> None:
    hook, muted_hook = channel("hook"), channel("muted", muted_until=T0 + timedelta(hours=1))
    rule([hook, muted_hook], ["failed"], group_window_seconds=0)
    task_id = create(name="loud")
    run(task_id, "FAILED", T0)
    drain(T0)
    assert [d.channel_id for d in db.session.scalars(select(Delivery))] == [hook], "the muted channel got nothing"
    with unit_of_work():
        db.session.get(Task, task_id).alerts_muted_until = T0 + timedelta(hours=1)
    run(task_id, "SUCCESS", T0)
    quiet = create(name="other")
    run(quiet, "FAILED", T0)
    with unit_of_work():
        rules.set_maintenance(True, "upgrade", T0)
    run(quiet, "SUCCESS", T0)
    run(quiet, "FAILED", T0 + timedelta(minutes=1))
    drain(T0 + timedelta(minutes=1))
    assert len(sent()) == 1, "nothing more went out: the task was muted, then maintenance muted everything"
    assert db.session.scalar(select(func.sum(AlertState.suppressed_count))) >= 3


def test_an_engine_event_goes_to_the_default_rules(app: Any) -> None:
    hook = channel()
    rule([hook], ["scheduler_down"])
    task_id = create(name="has-own")
    rule([channel("own")], ["failed"], task_id=task_id)
    with unit_of_work():
        rules.emit("scheduler_down", details={"title": "The scheduler is down", "message": "no beat for 90 s"}, now=T0)
    drain(T0)
    [payload] = sent()
    assert (payload["event"], payload["title"], payload["message"], payload["task"]) == (
        "scheduler_down", "The scheduler is down", "no beat for 90 s", None)


def test_mutes_and_maintenance_judge_an_event_by_when_it_happened_not_when_it_is_drained(app: Any) -> None:
    hook = channel("hook")
    rule([hook], ["failed"], group_window_seconds=0)
    during, before, muted_task = create(name="during"), create(name="before"), create(name="muted")
    run(before, "FAILED", T0 - timedelta(minutes=1))
    with unit_of_work():
        rules.set_maintenance(True, "deploy", T0)
        db.session.get(Task, muted_task).alerts_muted_until = T0 + timedelta(minutes=5)
    run(during, "FAILED", T0 + timedelta(minutes=1))
    run(muted_task, "FAILED", T0 + timedelta(minutes=2))
    with unit_of_work():
        rules.set_maintenance(False, now=T0 + timedelta(minutes=3))
    drain(T0 + timedelta(minutes=10))  # maintenance and the task's mute ended before the alerts worker drained
    assert [p["task_id"] for p in sent()] == [before], "only the failure from before maintenance went out"
    assert db.session.scalar(select(func.sum(AlertState.suppressed_count))) == 2


def test_a_failure_after_maintenance_ended_goes_out_though_maintenance_is_on_again_when_drained(app: Any) -> None:
    rule([channel("hook")], ["failed"], group_window_seconds=0)
    first, second = create(name="first"), create(name="second")
    with unit_of_work():
        rules.set_maintenance(True, "deploy", T0)
        rules.set_maintenance(True, "deploy, still", T0 + timedelta(minutes=1))  # the same period goes on
        rules.set_maintenance(False, now=T0 + timedelta(minutes=2))
    run(first, "FAILED", T0 + timedelta(minutes=3))
    run(second, "FAILED", T0 + timedelta(minutes=4))
    with unit_of_work():
        rules.set_maintenance(True, "again", T0 + timedelta(minutes=5))
    drain(T0 + timedelta(minutes=6))
    assert [p["task_id"] for p in sent()] == [first, second]
    switch = db.session.get(Setting, rules.MAINTENANCE_KEY).value
    assert switch["periods"] == [["2026-11-30T12:00:00+00:00", "2026-11-30T12:02:00+00:00"]]
    assert rules.in_maintenance_at(switch, T0 + timedelta(seconds=90))


def test_a_due_summary_is_sent_while_older_long_windows_are_still_open(app: Any, monkeypatch: Any) -> None:
    hook = channel()
    long_task, short_task = create(name="long window"), create(name="short window")
    rule([hook], ["retrying"], task_id=long_task, group_window_seconds=86400)
    rule([hook], ["retrying"], task_id=short_task, group_window_seconds=60)
    for task_id, at in ((long_task, T0), (long_task, T0), (short_task, T0 + timedelta(seconds=1)),
                        (short_task, T0 + timedelta(seconds=1))):
        run(task_id, "RETRYING", at)
        drain(at)
    monkeypatch.setattr(rules, "DRAIN_BATCH", 1)  # one summary a transaction: the long window comes first by age
    drain(T0 + timedelta(seconds=61))
    summaries = [p for p in sent() if p.get("summary")]
    assert [(p["task_id"], p["count"]) for p in summaries] == [(short_task, 1)]
