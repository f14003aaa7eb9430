"""Two admins demoting each other at the same moment: one succeeds, the other is refused (Postgres).

The last-admin check runs in the transaction that makes the change, with the active admins' rows locked
(SELECT ... FOR UPDATE). Here the first demotion holds its transaction open until the second one is seen
waiting for that lock (pg_locks), then commits; the second must then find the first demoted and refuse.
SQLite needs no such test: its transactions take the database's write lock at BEGIN IMMEDIATE.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import text

from chime import users
from chime.enums import Role
from chime.errors import ConflictError
from chime.extensions import db
from chime.models import User
from chime.unit_of_work import unit_of_work
from tests.roles.conftest import PASSWORD
from webapp.auth import create_user

DEADLINE_SECONDS = 30


def waits_for_a_lock(pid: int) -> bool:
    with db.engine.connect() as connection:
        return connection.scalar(text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted"),
                                 {"pid": pid}) > 0


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin(app: Any) -> None:
    first = create_user("first", PASSWORD, role=Role.ADMIN).id
    second = create_user("second", PASSWORD, role=Role.ADMIN).id
    second_pid: list[int] = []
    outcomes: dict[int, str] = {}

    def demote(user_id: int, hold_until_the_other_waits: bool) -> None:
        with app.app_context():
            try:
                with unit_of_work():
                    if not hold_until_the_other_waits:
                        second_pid.append(db.session.scalar(text("SELECT pg_backend_pid()")))
                    users.change_role(users.get_user(user_id), Role.VIEWER)
                    if hold_until_the_other_waits:
                        demoted.set()
                        deadline = time.monotonic() + DEADLINE_SECONDS
                        while not (second_pid and waits_for_a_lock(second_pid[0])):
                            assert time.monotonic() < deadline, "the second demotion never waited for the lock"
                            time.sleep(0.02)
                outcomes[user_id] = "demoted"
            except ConflictError:
                outcomes[user_id] = "refused"
            finally:
                db.session.remove()

    demoted = threading.Event()
    holder = threading.Thread(target=demote, args=(first, True))
    holder.start()
    assert demoted.wait(DEADLINE_SECONDS)
    contender = threading.Thread(target=demote, args=(second, False))
    contender.start()
    holder.join(DEADLINE_SECONDS)
    contender.join(DEADLINE_SECONDS)

    assert outcomes == {first: "demoted", second: "refused"}
    db.session.expire_all()
    assert {u.username: u.role for u in db.session.query(User)} == {"first": "viewer", "second": "admin"}
