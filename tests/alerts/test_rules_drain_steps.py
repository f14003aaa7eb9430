"""The drain's two steps on SQLite and Postgres: everything is read without a write lock, and the write
transaction that follows is short -- a fixed handful of statements for a batch of quiet events -- and never
acts on a row another drain already took."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, select

from chime import rules
from chime.database import READ_ONLY_OPTION
from chime.extensions import db
from chime.models import AlertOutbox, AlertState, Delivery
from tests.alerts.test_rules_drain import T0, channel, rule, run, sent
from tests.engine.helpers import create


@contextmanager
def transactions() -> Iterator[list[dict[str, Any]]]:
    """Record every transaction on the app's engine while the block runs: whether it was begun read-only,
    and the statements it ran."""
    seen: list[dict[str, Any]] = []
    engine = db.engine

    def begin(connection: Any) -> None:
        seen.append({"read_only": bool(connection.get_execution_options().get(READ_ONLY_OPTION)), "statements": []})

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if seen:
            seen[-1]["statements"].append(" ".join(sql.split()))

    event.listen(engine, "begin", begin)
    event.listen(engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        event.remove(engine, "begin", begin)
        event.remove(engine, "before_cursor_execute", statement)


def failing_task_with_quiet_events(count: int) -> int:
    """A task whose default rule hears `failed` and `failing`; it fails once and is drained (the alerts go out),
    then fails `count` more times: each of those is quiet (it stays failing, no repeat asked)."""
    hook = channel()
    rule([hook], ["failed", "failing"], failing_threshold=2)
    task_id = create(name="flaky")
    run(task_id, "FAILED", T0)
    run(task_id, "FAILED", T0 + timedelta(seconds=1))
    rules.drain(now=T0 + timedelta(seconds=2))
    assert [p["event"] for p in sent()] == ["failed", "failing"]
    for i in range(count):
        run(task_id, "FAILED", T0 + timedelta(seconds=3 + i))
    db.session.remove()
    return task_id


def test_a_batch_of_quiet_events_is_written_in_one_short_transaction(app: Any) -> None:
    failing_task_with_quiet_events(40)
    with transactions() as seen:
        made = rules.drain(now=T0 + timedelta(minutes=5))
    assert made == 0 and len(sent()) == 2, "a task that stays failing alerts no more"
    writes = [t for t in seen if not t["read_only"]]
    if db.engine.dialect.name == "sqlite":
        assert len(seen) - len(writes) == 1, "one read-only transaction read the batch"
    [write] = writes
    assert len(write["statements"]) <= 3, write["statements"]  # claim, delete, the states: not per event
    assert not any(s.startswith(("UPDATE", "INSERT")) for s in write["statements"]), "a quiet decision writes nothing"
    assert db.session.scalar(select(func.count(AlertOutbox.id))) == 0


def test_an_empty_outbox_takes_no_write_transaction(app: Any) -> None:
    channel()
    with transactions() as seen:
        assert rules.drain(now=T0) == 0
    assert seen and all(t["read_only"] for t in seen) if db.engine.dialect.name == "sqlite" else len(seen) == 1
    assert not any(s.startswith(("UPDATE", "INSERT", "DELETE")) for t in seen for s in t["statements"])


def test_a_row_another_drain_took_between_the_steps_is_left_to_it(app: Any) -> None:
    hook = channel()
    rule([hook], ["failed"])
    task_id = create(name="nightly")
    run(task_id, "FAILED", T0)
    now = T0 + timedelta(seconds=1)
    late, early = rules.read_plan(now, 50), rules.read_plan(now, 50)
    assert rules.write_plan(early, now) == (1, 1)
    assert rules.write_plan(late, now) == (0, 0), "the late drain finds the row gone and sends nothing"
    assert [p["event"] for p in sent()] == ["failed"]
    assert db.session.scalar(select(func.count(Delivery.id))) == 1


def test_a_full_batch_another_drain_took_ends_the_drain_instead_of_reading_it_again(app: Any,
                                                                                   monkeypatch: Any) -> None:
    hook = channel()
    rule([hook], ["retrying"])
    task_id = create(name="busy")
    for i in range(4):
        run(task_id, "RETRYING", T0 + timedelta(seconds=i))
    reads = []
    original = rules.read_plan

    def read_then_lose_the_rows(now: Any, batch: int) -> Any:
        plan = original(now, batch)
        reads.append(plan)
        rules.write_plan(original(now, batch), now)  # another drain takes the same rows first
        return plan

    monkeypatch.setattr(rules, "read_plan", read_then_lose_the_rows)
    assert rules.drain_batch(T0 + timedelta(minutes=1), 2) == (0, False)
    assert len(reads) == 1 and reads[0].full


def test_the_reads_join_a_transaction_the_caller_left_open_and_keep_its_changes(app: Any) -> None:
    from chime.models import Setting

    db.session.add(Setting(key="kept", value={"by": "the caller"}))
    db.session.flush()
    rules.read_plan(T0, 50)
    db.session.commit()
    assert db.session.get(Setting, "kept").value == {"by": "the caller"}


def retrying_three_times_in_a_window() -> int:
    """A task whose rule groups `retrying` for 60 s retries three times in 2 s, drained each time: the first
    alert goes out, the other two are grouped ("try 2" the last). Returns the task's id."""
    hook = channel()
    rule([hook], ["retrying"], group_window_seconds=60)
    task_id = create(name="flappy")
    for i in range(3):
        run(task_id, "RETRYING", T0 + timedelta(seconds=i), message=f"try {i}")
        rules.drain(now=T0 + timedelta(seconds=i))
    return task_id


def test_an_event_after_a_window_with_grouped_events_follows_that_windows_summary(app: Any) -> None:
    task_id = retrying_three_times_in_a_window()
    run(task_id, "RETRYING", T0 + timedelta(seconds=61), message="try 3")
    rules.drain(now=T0 + timedelta(seconds=61))  # the window ended: its summary is due as the new event comes
    rules.drain(now=T0 + timedelta(seconds=200))
    first, summary, latest = sent()
    assert "try 0" in first["message"]
    assert summary["summary"] is True and summary["count"] == 2 and "try 2" in summary["message"]
    assert "try 3" in latest["message"] and "summary" not in latest, "and nothing repeats the event already sent"


def test_grouped_events_keep_the_last_payload_for_the_summary(app: Any) -> None:
    retrying_three_times_in_a_window()
    [state] = db.session.scalars(select(AlertState)).all()
    assert state.pending_count == 2 and "try 2" in state.last_payload["message"]
    rules.drain(now=T0 + timedelta(seconds=61))
    first, summary = sent()
    assert "try 0" in first["message"]
    assert summary["count"] == 2 and summary["summary"] is True and "try 2" in summary["message"]
