"""A task's alerts in the admin (issue 13: each attempt visible per task): the task page links to them; every
attempt shows its time, channel, event, outcome, HTTP status or SMTP reply and error, secrets masked; viewers
read it; a missing task is a 404 and a bad page number a 400 (SQLite and Postgres)."""
from __future__ import annotations

import re
import socket
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.fernet import Fernet

from chime import alerts, channels
from chime.enums import DeliveryStatus, Role
from chime.extensions import db
from chime.models import Delivery, DeliveryAttempt
from chime.unit_of_work import unit_of_work
from tests.admin.conftest import AdminClient, add_execution, add_task, sign_in
from webapp.auth import create_user

TOKEN = "T0KEN-in-the-slack-URL-84"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def secrets_key(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app.config["SECRETS_KEY"] = Fernet.generate_key().decode()
    monkeypatch.setenv("CHIME_EGRESS_ALLOW", "127.0.0.1/32")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def delivery(channel_name: str, event: str, task_id: int, attempts: list[tuple[bool, int | None, str | None, str | None]],
             status: DeliveryStatus, execution_id: int | None = None) -> str:
    """A delivery row with its attempts (ok, HTTP status or SMTP code, SMTP reply, error), a minute apart."""
    row = Delivery(delivery_id=f"d-{channel_name}-{event}-{task_id}", channel_id=None, channel_name=channel_name,
                   event=event, task_id=task_id, execution_id=execution_id, status=status, attempts=len(attempts),
                   payload={"event": event}, created_at=T0)
    row.attempt_log = [DeliveryAttempt(attempt=n, attempted_at=T0 + timedelta(minutes=n - 1), ok=ok,
                                       response_status=code, reply=reply, error=error)
                       for n, (ok, code, reply, error) in enumerate(attempts, start=1)]
    db.session.add(row)
    db.session.commit()
    return row.delivery_id


def rows_of(html: str) -> list[str]:
    """The attempt rows of the deliveries table, each as its text without tags."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in body.split("<tr")[1:]]


def test_every_attempt_of_a_tasks_alerts_shows_its_channel_event_outcome_answer_and_error(admin: AdminClient) -> None:
    task, other = add_task("nightly"), add_task("other")
    run = add_execution(task, "FAILED")
    delivery("ops-hook", "failed", task.id, [(False, 503, None, "the receiver answered HTTP 503"),
                                             (True, 204, None, None)], DeliveryStatus.DELIVERED, run.id)
    delivery("ops-mail", "failing", task.id, [(False, 535, "535 5.7.8 Authentication credentials invalid",
                                               "the SMTP server answered 535 ...")], DeliveryStatus.PENDING)
    delivery("elsewhere", "failed", other.id, [(True, 204, None, None)], DeliveryStatus.DELIVERED)

    assert "Alerts sent" in admin.html(f"/tasks/{task.id}")
    html = admin.html(f"/tasks/{task.id}/deliveries")
    assert "elsewhere" not in html, "only this task's alerts"
    mail, hook_ok, hook_refused = rows_of(html)  # newest delivery first, its newest attempt first
    assert "ops-mail" in mail and "failing" in mail and "failed attempt 1; pending" in mail
    assert "535 535 5.7.8 Authentication credentials invalid" in mail and "the SMTP server answered 535" in mail
    assert "2026-11-30 09:00 UTC" in mail
    assert "ops-hook" in hook_ok and "delivered attempt 2" in hook_ok and "204" in hook_ok
    assert f"run #{run.id}" in hook_ok and "2026-11-30 09:01 UTC" in hook_ok
    assert "failed attempt 1" in hook_refused and "503" in hook_refused and "answered HTTP 503" in hook_refused


def test_a_failed_send_shows_its_error_with_the_channels_secret_masked(admin: AdminClient) -> None:
    task = add_task("nightly")
    task_id = task.id
    with unit_of_work():
        slack = channels.create_channel({"name": "team-chat", "kind": "slack", "secrets": {
            "url": f"http://127.0.0.1:{closed_port()}/services/{TOKEN}"}})
        queued = alerts.enqueue_delivery(slack, {"event": "failed", "title": "nightly failed", "task_id": task_id})
        assert queued is not None
        row_id = queued.id
    assert alerts.attempt(row_id, 0) == DeliveryStatus.PENDING  # nothing listens: a retry is scheduled

    [row] = rows_of(admin.html(f"/tasks/{task_id}/deliveries"))
    assert "team-chat" in row and "failed attempt 1; pending" in row
    assert TOKEN not in admin.html(f"/tasks/{task_id}/deliveries")
    assert "the request failed" in row and "Connection refused" in row, "the error as recorded (secrets masked)"


def test_a_delivery_not_attempted_yet_and_a_task_without_alerts(admin: AdminClient) -> None:
    task, quiet = add_task("nightly"), add_task("quiet")
    delivery("ops-hook", "recovered", task.id, [], DeliveryStatus.PENDING)
    [row] = rows_of(admin.html(f"/tasks/{task.id}/deliveries"))
    assert "recovered" in row and "pending no attempt yet" in row
    assert "No alert of this task has been sent." in admin.html(f"/tasks/{quiet.id}/deliveries")


def test_a_viewer_reads_a_tasks_alerts(app: Any, client: Any) -> None:
    task = add_task("nightly")
    delivery("ops-hook", "failed", task.id, [(True, 204, None, None)], DeliveryStatus.DELIVERED)
    create_user("vic", "a long enough password", role=Role.VIEWER)
    sign_in(client, "vic", "a long enough password")
    response = client.get(f"/tasks/{task.id}/deliveries")
    assert response.status_code == 200 and "ops-hook" in response.get_data(as_text=True)


def test_a_missing_task_is_a_404_and_a_bad_page_a_400(admin: AdminClient) -> None:
    task = add_task("nightly")
    assert admin.client.get("/tasks/999999/deliveries").status_code == 404
    assert admin.client.get(f"/tasks/{task.id}/deliveries?page=soon").status_code == 400
    assert admin.client.get(f"/tasks/{task.id}/deliveries?page=99").status_code == 200, "past the end: the last page"
