"""Helpers for the admin tests: a signed-in test client that sends CSRF tokens."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import g

from werkzeug.security import generate_password_hash

from webapp import auth
from webapp.auth import create_user
from chime.extensions import db
from chime.models import Execution, Notification, Task

USERNAME = "admin"
PASSWORD = "correct horse battery"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def fresh_csrf(client: Any, path: str = "/login") -> str:
    """The CSRF token of the client's current session.

    The `app` fixture keeps one app context pushed, so every test request shares `g`,
    where Flask-WTF caches the token; drop it so the token matches this session (after
    login_user() clears the session it would not).
    """
    g.pop("csrf_token", None)
    return csrf_from(client.get(path).get_data(as_text=True))


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no csrf_token input on the page"
    return match.group(1)


class AdminClient:
    """The Flask test client, signed in; `post` adds the CSRF token of the session."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.token = fresh_csrf(client)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def html(self, path: str, status: int = 200) -> str:
        response = self.client.get(path)
        assert response.status_code == status, response.get_data(as_text=True)[:2000]
        return response.get_data(as_text=True)


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash test passwords with few iterations: the admin tests sign in over a hundred times."""
    monkeypatch.setattr(auth, "hash_password", lambda password: generate_password_hash(password, "pbkdf2:sha256:1000"))
    monkeypatch.setattr(auth, "DUMMY_HASH", generate_password_hash("not-a-real-password", "pbkdf2:sha256:1000"))


def sign_in(client: Any, username: str = USERNAME, password: str = PASSWORD, next_path: str = "") -> Any:
    token = fresh_csrf(client)
    path = "/login" + (f"?next={next_path}" if next_path else "")
    return client.post(path, data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture
def admin(app: Any, client: Any) -> AdminClient:
    create_user(USERNAME, PASSWORD)
    response = sign_in(client)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return AdminClient(client)


def add_task(name: str = "ping", **fields: Any) -> Task:
    """Store a task directly (no scheduling), for pages that only read."""
    values = {"job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL", "interval_seconds": 60,
              "timezone": "UTC", **fields}
    task = Task(name=name, **values)
    db.session.add(task)
    db.session.commit()
    return task


def add_execution(task: Task | None, status: str = "SUCCESS", *, minutes_ago: float = 5, trigger: str = "SCHEDULE",
                  message: str = "", attempt: int = 1, **fields: Any) -> Execution:
    at = fields.pop("created_at", None) or datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    execution = Execution(
        task_id=task.id if task else None, task_name=task.name if task else "gone", status=status,
        attempt=attempt, trigger=trigger, scheduled_for=at, started_at=at, finished_at=at + timedelta(seconds=2),
        duration_ms=2000, message=message, created_at=at, **fields,
    )
    db.session.add(execution)
    db.session.commit()
    return execution


def add_notification(title: str = "Task failed", level: str = "ERROR", task: Task | None = None,
                     read: bool = False, message: str = "") -> Notification:
    notification = Notification(task_id=task.id if task else None, level=level, title=title, read=read,
                                message=message)
    db.session.add(notification)
    db.session.commit()
    return notification
