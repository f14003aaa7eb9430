"""A rule's own overrun threshold, on SQLite and Postgres: the watchdog's pass watches each running run once
per rule that sends its `overrun` (the task's own rules, else the default ones), with that rule's
`overrun_after_seconds`, else CHIME_OVERRUN_AFTER_SECONDS, else the task's timeout; the drain sends each
such event only to the rule whose threshold passed."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from chime import rules, watchdog
from chime.enums import Status, Trigger
from chime.extensions import db
from chime.models import AlertOutbox, Delivery, Execution
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from tests.alerts.test_rules_drain import channel, rule
from tests.engine.helpers import create

ALIVE = watchdog.Observation("ok", task_workers=1)


def running_since(task_id: int, seconds: float) -> int:
    with unit_of_work():
        execution = Execution(task_id=task_id, task_name="t", status=Status.RUNNING, trigger=Trigger.SCHEDULE,
                              scheduled_for=utcnow(), started_at=utcnow() - timedelta(seconds=seconds))
        db.session.add(execution)
        db.session.flush()
        return execution.id


def overrun_rows() -> list[tuple[int | None, list[int] | None, float]]:
    rows = db.session.scalars(select(AlertOutbox).where(AlertOutbox.event == "overrun").order_by(AlertOutbox.id))
    found = [(row.task_id, row.details.get("rule_ids"), row.details["threshold_seconds"]) for row in rows]
    db.session.rollback()
    return found


def delivered_to() -> list[tuple[int | None, str]]:
    db.session.expire_all()
    return [(row.channel_id, row.event) for row in db.session.scalars(select(Delivery).order_by(Delivery.id))]


def test_each_default_rule_hears_of_an_overrun_at_its_own_threshold(app: Any) -> None:
    quick_hook, slow_hook = channel("quick"), channel("slow")
    quick = rule([quick_hook], ["overrun"], overrun_after_seconds=30)
    rule([slow_hook], ["overrun"])  # no threshold of its own: the task's timeout (600 s)
    task_id = create(name="report", interval_seconds=3600, timeout_seconds=600)
    running_since(task_id, 45)

    assert watchdog.watch(ALIVE, utcnow()) == ["overrun"]
    assert watchdog.watch(ALIVE, utcnow()) == [], "once per run and rule"
    assert overrun_rows() == [(task_id, [quick], 30.0)]
    rules.drain(now=utcnow())
    assert delivered_to() == [(quick_hook, "overrun")], "only the rule whose threshold passed"

    later = utcnow() + timedelta(seconds=600)
    assert watchdog.watch(ALIVE, later) == ["overrun"], "the other rule's, when the task's timeout passed"
    assert [row[2] for row in overrun_rows()] == [600.0]
    rules.drain(now=later)
    assert delivered_to() == [(quick_hook, "overrun"), (slow_hook, "overrun")]


def test_a_tasks_own_rule_threshold_replaces_the_default_rules(app: Any) -> None:
    default_hook, own_hook = channel("default"), channel("own")
    rule([default_hook], ["overrun"], overrun_after_seconds=20)
    owned = create(name="owned", interval_seconds=3600, timeout_seconds=600)
    own = rule([own_hook], ["failed", "overrun"], task_id=owned, overrun_after_seconds=120)
    other = create(name="other", interval_seconds=3600, timeout_seconds=600)
    running_since(owned, 60)
    running_since(other, 60)

    assert watchdog.watch(ALIVE, utcnow()) == ["overrun"]
    assert [row[0] for row in overrun_rows()] == [other], "the owned task waits for its own rule's 120 s"
    assert watchdog.watch(ALIVE, utcnow() + timedelta(seconds=61)) == ["overrun"]
    assert overrun_rows()[1] == (owned, [own], 120.0)


def test_without_a_rules_threshold_the_configured_time_applies(app: Any) -> None:
    app.config["OVERRUN_AFTER_SECONDS"] = 20
    rule([channel()], ["overrun"])
    task_id = create(name="slow", interval_seconds=3600, timeout_seconds=600)
    running_since(task_id, 30)
    assert watchdog.watch(ALIVE, utcnow()) == ["overrun"]
    assert overrun_rows()[0][2] == 20.0


def test_a_rule_that_does_not_send_overrun_sets_no_threshold(app: Any) -> None:
    rule([channel()], ["failed"], overrun_after_seconds=10)
    task_id = create(name="slow", interval_seconds=3600, timeout_seconds=600)
    running_since(task_id, 30)
    assert watchdog.watch(ALIVE, utcnow()) == [], "the task's timeout (600 s) applies"


def test_a_disabled_rules_threshold_does_not_apply(app: Any) -> None:
    rule([channel()], ["overrun"], overrun_after_seconds=10, enabled=False)
    task_id = create(name="slow", interval_seconds=3600, timeout_seconds=600)
    running_since(task_id, 30)
    assert watchdog.watch(ALIVE, utcnow()) == []
