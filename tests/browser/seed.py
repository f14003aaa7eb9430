"""Realistic demo data for the end-to-end scenarios and the screenshots."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from chime import services
from chime.extensions import db
from chime.models import Execution, Notification, Task
from chime.unit_of_work import unit_of_work

TASKS = [
    {"name": "Nightly database backup", "job": "echo", "args": {"message": "backup"}, "schedule_type": "CRON",
     "cron": "30 2 * * *", "timezone": "Europe/Berlin", "description": "Dumps the main database to object storage."},
    {"name": "Ping status page", "job": "http_request", "args": {"url": "https://status.example.com/health"},
     "schedule_type": "INTERVAL", "interval_seconds": 300, "queue": "high", "notify": "ON_FAILURE"},
    {"name": "Weekly report", "job": "echo", "args": {"message": "report"}, "schedule_type": "CRON",
     "cron": "0 9 * * 1", "timezone": "America/New_York"},
    {"name": "Clean temporary files", "job": "noop", "args": {}, "schedule_type": "INTERVAL",
     "interval_seconds": 3600, "queue": "low"},
    {"name": "Quarter close reminder", "job": "echo", "args": {"message": "close the books"},
     "schedule_type": "ONE_TIME", "run_at": "2031-03-31T17:00:00", "timezone": "Europe/London"},
    {"name": "Flaky partner sync", "job": "fail", "args": {"message": "partner API answered 502"},
     "schedule_type": "INTERVAL", "interval_seconds": 900, "max_retries": 2, "enabled": False},
]


def add_execution(task: Task, status: str, at: datetime, *, message: str = "", trigger: str = "SCHEDULE",
                  attempt: int = 1, result: Any = None, duration_ms: int = 1200) -> Execution:
    execution = Execution(
        task_id=task.id, task_name=task.name, status=status, attempt=attempt, trigger=trigger,
        scheduled_for=at, started_at=at + timedelta(milliseconds=40),
        finished_at=at + timedelta(milliseconds=40 + duration_ms), duration_ms=duration_ms,
        message=message, result=result, worker="worker-1.chime", job_id=f"chime-{task.id}-{int(at.timestamp())}-1",
        created_at=at,
    )
    db.session.add(execution)
    return execution


def seed_demo_data(now: datetime | None = None) -> dict[str, Task]:
    """Create the demo tasks, a day of executions and a few notifications; return tasks by name."""
    now = now or datetime.now(timezone.utc)
    rng = random.Random(7)
    with unit_of_work():
        tasks = {spec["name"]: services.create_task(dict(spec), allow_shell=False) for spec in TASKS}
        services.update_task(tasks["Weekly report"], {"depends_on": [tasks["Nightly database backup"].id]},
                             partial=True, allow_shell=False)
    ping, flaky = tasks["Ping status page"], tasks["Flaky partner sync"]
    for hour in range(23, -1, -1):  # oldest first, as the engine writes them
        base = now - timedelta(hours=hour)
        for minute in range(48 if hour % 5 else 40, -1, -12 if hour % 5 else -20):
            at = base - timedelta(minutes=minute)
            failed = rng.random() < 0.08
            add_execution(ping, "FAILED" if failed else "SUCCESS", at,
                          message="HTTP GET https://status.example.com/health returned 503" if failed else "",
                          result=None if failed else {"status_code": 200, "elapsed_ms": rng.randint(40, 300)},
                          duration_ms=rng.randint(60, 900))
        if hour % 3 == 0:
            add_execution(flaky, "RETRYING", base - timedelta(minutes=31), message="partner API answered 502")
            add_execution(flaky, "FAILED", base - timedelta(minutes=29), attempt=2, trigger="RETRY",
                          message="partner API answered 502 after 2 attempts")
        if hour % 8 == 4:
            add_execution(tasks["Clean temporary files"], "SKIPPED", base - timedelta(minutes=5),
                          message="Skipped: the previous run was still running")
    ping.status, ping.last_status, ping.last_run_at = "SUCCESS", "SUCCESS", now - timedelta(minutes=3)
    flaky.status, flaky.last_status, flaky.last_run_at = "FAILED", "FAILED", now - timedelta(minutes=29)
    for title, level, task in [("‘Flaky partner sync’ failed", "ERROR", flaky),
                               ("‘Ping status page’ recovered", "SUCCESS", ping),
                               ("‘Clean temporary files’ skipped", "WARNING", tasks["Clean temporary files"])]:
        db.session.add(Notification(task_id=task.id, level=level, title=title, message="See the execution log."))
    db.session.commit()
    return tasks
