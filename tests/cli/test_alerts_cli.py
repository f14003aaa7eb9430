"""`flask alerts`: list the rules, and switch maintenance on and off as the CLI actor (audited)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from chime import rules
from chime.extensions import db
from chime.models import AlertRule, AuditEvent, Channel
from chime.unit_of_work import unit_of_work


def test_maintenance_is_switched_from_the_cli_and_audited_as_the_cli(app: Any) -> None:
    runner = app.test_cli_runner()
    assert "Maintenance is off" in runner.invoke(args=["alerts", "maintenance"]).output
    result = runner.invoke(args=["alerts", "maintenance", "on", "--reason", "upgrade"])
    assert result.exit_code == 0 and "Maintenance is on since" in result.output and "upgrade" in result.output
    db.session.expire_all()
    assert rules.maintenance()["on"] is True
    assert "Maintenance is off" in runner.invoke(args=["alerts", "maintenance", "off"]).output
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "maintenance")).all()
    assert [(e.action, e.source) for e in events] == [("enable", "cli"), ("disable", "cli")]


def test_the_rules_are_listed_default_first(app: Any) -> None:
    with unit_of_work():
        channel = Channel(name="hook", kind="webhook", config={"url": "https://hooks.example.com/x"}, secret_names=[])
        db.session.add(channel)
        db.session.flush()
        db.session.add(AlertRule(task_id=None, events=["failed", "scheduler_down"], channel_ids=[channel.id]))
    output = app.test_cli_runner().invoke(args=["alerts", "rules"]).output
    assert "(default)" in output and "failed,scheduler_down" in output


def test_a_rules_own_overrun_threshold_is_listed(app: Any) -> None:
    with unit_of_work():
        channel = Channel(name="hook", kind="webhook", config={"url": "https://hooks.example.com/x"}, secret_names=[])
        db.session.add(channel)
        db.session.flush()
        db.session.add(AlertRule(task_id=None, events=["overrun"], channel_ids=[channel.id], overrun_after_seconds=900))
    output = app.test_cli_runner().invoke(args=["alerts", "rules"]).output
    header, row = output.splitlines()[:2]
    assert "OVERRUN S" in header and row.split()[-1] == "900"
    as_json = app.test_cli_runner().invoke(args=["alerts", "rules", "--json"]).output
    assert '"overrun_after_seconds": 900' in as_json
