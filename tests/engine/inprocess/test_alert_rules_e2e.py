"""Alert rules end to end, in this process, on a real Redis: a failing task with a rule to a webhook channel
delivers `failed` to a real HTTP receiver (signed), the alerts worker draining the outbox the executor wrote;
and the bell groups a task that succeeds every second."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from chime import alert_rules
from chime.extensions import db
from chime.models import Notification
from chime.unit_of_work import unit_of_work
from tests.engine.helpers import create, in_seconds
from tests.engine.inprocess.engine import InProcessEngine
from tests.engine.inprocess.test_alert_delivery import Receiver, deliver, webhook  # noqa: F401 (fixture)
from tests.engine_fixtures import wait_for


def add_rule(**body: Any) -> None:
    with unit_of_work():
        alert_rules.create_rule(body)
    db.session.rollback()


def test_a_failing_task_with_a_rule_delivers_failed_to_a_real_receiver(
        engine: InProcessEngine, deliver: Callable[[], None]) -> None:  # noqa: F811
    with Receiver() as receiver:
        hook = webhook(receiver.url)
        task_id = create(name="nightly", job="fail", args={"message": "disk full"}, schedule_type="ONE_TIME",
                         interval_seconds=None, run_at=in_seconds(0), max_retries=1, retry_backoff_seconds=1,
                         timezone="Europe/Berlin")
        add_rule(task_id=task_id, events=["failed", "retrying"], channel_ids=[hook.id], group_window_seconds=0)

        def both_arrived() -> bool:
            engine.dispatch()
            engine.work()
            deliver()
            return len(receiver.requests) >= 2

        wait_for(both_arrived, 60, "the retrying and failed alerts to arrive")
        time.sleep(0.5)
        deliver()
    events = [(r["headers"]["X-Chime-Event"], json.loads(r["body"])) for r in receiver.requests]
    assert [name for name, _ in events] == ["retrying", "failed"], "each exactly once, in order"
    assert all(r["valid"] for r in receiver.requests), "signed with the channel's secret"
    failed = events[1][1]
    assert failed["title"] == "'nightly' failed" and failed["task"] == {"id": task_id, "name": "nightly"}
    assert "disk full" in failed["message"] and ("CET (+01:00)" in failed["message"]
                                                 or "CEST (+02:00)" in failed["message"])
    assert "Retry at" in events[0][1]["message"] and "." not in events[0][1]["message"].split("Retry at")[1][:20]


def test_the_bell_groups_a_task_that_succeeds_every_second(engine: InProcessEngine) -> None:
    task_id = create(name="heartbeat", job="noop", schedule_type="INTERVAL", interval_seconds=1)

    def ran(times: int) -> Callable[[], bool]:
        def check() -> bool:
            db.session.expire_all()
            rows = db.session.scalars(select(Notification).where(Notification.task_id == task_id)).all()
            db.session.rollback()
            return sum(n.count for n in rows) >= times

        return check

    engine.run_until(ran(6), 60, "six successful runs")
    rows = db.session.scalars(select(Notification).where(Notification.task_id == task_id)).all()
    assert len(rows) == 1, "one bell entry, not one per run"
    [row] = rows
    assert row.level == "SUCCESS" and row.count >= 6 and not row.read and row.last_at is not None
