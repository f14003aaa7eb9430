"""Each task's latest recorded occurrence, which the dispatcher and the reconciler judge by: manual runs are
not occurrences, ids of tasks without runs (or without tasks) give nothing, and many ids cost Postgres one
statement with one array parameter (SQLite: one IN list per IN_LIST_BATCH ids). SQLite and Postgres."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import event

from chime.database import IN_LIST_BATCH
from chime.extensions import db
from chime.models import Execution
from chime.unit_of_work import unit_of_work
from scheduler.reconcile import latest_recorded_occurrences
from tests.engine.helpers import create

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def recorded(task_id: int, scheduled_for: datetime, trigger: str = "SCHEDULE", status: str = "SUCCESS") -> None:
    with unit_of_work():
        db.session.add(Execution(task_id=task_id, task_name="t", status=status, attempt=1, trigger=trigger,
                                 scheduled_for=scheduled_for, started_at=scheduled_for, finished_at=scheduled_for))


def statements_while(action: Any) -> tuple[Any, list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        seen.append(sql)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        return action(), seen
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def test_the_latest_scheduled_run_counts_and_a_manual_one_does_not(app: Any) -> None:
    nightly, hourly, idle = create(name="nightly"), create(name="hourly"), create(name="idle")
    recorded(nightly, T0)
    recorded(nightly, T0 + timedelta(days=1), status="FAILED")
    recorded(nightly, T0 + timedelta(days=2), trigger="MANUAL")
    recorded(hourly, T0 + timedelta(hours=1), trigger="RETRY")
    latest = latest_recorded_occurrences([nightly, hourly, idle, 999_999])
    assert latest == {nightly: T0 + timedelta(days=1), hourly: T0 + timedelta(hours=1)}


def test_many_ids_are_one_statement_on_postgres_and_in_lists_on_sqlite(app: Any) -> None:
    task_id = create(name="among many")
    recorded(task_id, T0)
    ids = [task_id, *range(1_000_000, 1_000_000 + 2 * IN_LIST_BATCH + 10)]
    latest, statements = statements_while(lambda: latest_recorded_occurrences(ids))
    assert latest == {task_id: T0}
    reads = [sql for sql in statements if "max(executions.scheduled_for)" in sql.lower()]
    if db.engine.dialect.name == "postgresql":
        assert len(reads) == 1 and "ANY" in reads[0] and reads[0].count("%(") <= 4
    else:
        assert len(reads) == 3
