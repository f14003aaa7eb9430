"""The admin's alert rules: the default rules page with the maintenance switch, a task's rules and its
alert mute on the task page; forms post through the same use-cases as the API (SQLite and Postgres)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from chime import rules
from chime.extensions import db
from chime.models import AlertRule, Channel, Task
from chime.unit_of_work import unit_of_work
from tests.admin.conftest import add_task


def post_form(admin: Any, path: str, pairs: list[tuple[str, str]]) -> Any:
    """Post a form with repeated fields (checkboxes), with the session's CSRF token."""
    return admin.client.post(path, data=MultiDict([("csrf_token", admin.token), *pairs]))


def hook() -> int:
    with unit_of_work():
        row = Channel(name="ops-hook", kind="webhook", config={"url": "https://hooks.example.com/x"}, secret_names=[])
        db.session.add(row)
        db.session.flush()
        return row.id


def test_an_admin_adds_a_default_rule_and_switches_maintenance_on_the_rules_page(admin: Any) -> None:
    channel_id = hook()
    page = admin.html("/alerts/rules")
    assert "No default rule yet." in page and "ops-hook" in page and "Start maintenance" in page
    form = [("events", "failed"), ("events", "scheduler_down"), ("channel_ids", str(channel_id)),
            ("group_window_seconds", "60")]
    assert post_form(admin, "/alerts/rules", form).status_code == 302
    [rule] = db.session.scalars(select(AlertRule)).all()
    assert (rule.task_id, rule.events, rule.channel_ids, rule.group_window_seconds) == (
        None, ["failed", "scheduler_down"], [channel_id], 60)
    assert "failed, scheduler_down" in admin.html("/alerts/rules")
    admin.post("/alerts/maintenance", data={"on": "1", "reason": "upgrade"})
    db.session.expire_all()
    assert rules.maintenance()["on"] is True and "End maintenance" in admin.html("/alerts/rules")


def test_a_bad_rule_from_the_form_is_refused_with_the_reason(admin: Any) -> None:
    hook()
    response = admin.post("/alerts/rules", data={"group_window_seconds": "soon"}, follow_redirects=True)
    assert "Not saved" in response.get_data(as_text=True)
    assert db.session.scalars(select(AlertRule)).all() == []


def test_the_task_page_shows_its_rules_and_mutes_its_alerts(admin: Any) -> None:
    channel_id = hook()
    task = add_task("nightly")
    task_id = task.id
    db.session.commit()
    assert "No rule of its own: the default rules apply." in admin.html(f"/tasks/{task_id}")
    post_form(admin, "/alerts/rules", [("task_id", str(task_id)), ("events", "failing"),
                                       ("channel_ids", str(channel_id)), ("failing_threshold", "5")])
    page = admin.html(f"/tasks/{task_id}")
    assert "failing after 5" in page and "ops-hook" in page
    admin.post(f"/tasks/{task_id}/alerts-mute", data={"until": "2031-06-01T09:00:00Z", "action": "mute"})
    db.session.expire_all()
    assert db.session.get(Task, task_id).alerts_muted_until.isoformat() == "2031-06-01T09:00:00+00:00"
    assert "Alerts muted until" in admin.html(f"/tasks/{task_id}")


def test_a_task_rule_with_its_own_overrun_threshold_from_the_form(admin: Any) -> None:
    channel_id = hook()
    task = add_task("report")
    task_id = task.id
    db.session.commit()
    form = [("task_id", str(task_id)), ("events", "overrun"), ("channel_ids", str(channel_id)),
            ("overrun_after_seconds", "900")]
    assert post_form(admin, "/alerts/rules", form).status_code == 302
    [rule] = db.session.scalars(select(AlertRule)).all()
    assert (rule.task_id, rule.events, rule.overrun_after_seconds) == (task_id, ["overrun"], 900)
    assert "overrun after 900 s" in admin.html(f"/tasks/{task_id}")


def test_a_bad_overrun_threshold_from_the_form_is_refused_and_saves_nothing(admin: Any) -> None:
    channel_id = hook()
    for bad in ("0", "soon", "604801", "1.5"):
        pairs = [("csrf_token", admin.token), ("events", "overrun"), ("channel_ids", str(channel_id)),
                 ("overrun_after_seconds", bad)]
        response = admin.client.post("/alerts/rules", data=MultiDict(pairs), follow_redirects=True)
        assert "Not saved: overrun_after_seconds" in response.get_data(as_text=True), bad
    assert db.session.scalars(select(AlertRule)).all() == []


def test_a_channel_id_no_database_can_hold_from_the_form_is_refused_and_saves_nothing(admin: Any) -> None:
    hook()
    for bad in ("9223372036854775808", "2147483648"):
        pairs = [("csrf_token", admin.token), ("events", "failed"), ("channel_ids", bad)]
        response = admin.client.post("/alerts/rules", data=MultiDict(pairs), follow_redirects=True)
        assert response.status_code == 200 and "Not saved: channel_ids" in response.get_data(as_text=True), bad
    assert db.session.scalars(select(AlertRule)).all() == []
