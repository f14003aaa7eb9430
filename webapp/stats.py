"""The numbers behind /api/stats/ and the dashboard, from the database and Redis (chime.schemas.stats says what they hold)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import func, select

from scheduler import health
from chime.extensions import db, get_redis
from chime.models import Execution, Notification, Task
from chime.schemas.stats import NEXT_RUNS_COUNT, SchedulerState, Stats
from chime.timeutil import utcnow


def collect_stats(now: datetime | None = None) -> dict[str, Any]:
    """Gather the whole stats document (JSON-ready); Redis parts degrade to null when Redis is down.

    Its executions' total and by_status count the whole log: with ten million rows that reads every
    one of them (an index of them) and takes a second or more; the dashboard does not show them and
    reads `dashboard_stats` instead.
    """
    now = now or utcnow()
    return Stats.of(
        tasks=task_counts(),
        executions=execution_counts(now),
        next_runs=next_runs(),
        **redis_state(),
        notifications=notification_counts(),
    )


def dashboard_stats(now: datetime) -> dict[str, Any]:
    """What the dashboard shows of the stats: collect_stats without the whole log's counts (executions
    holds last_24h alone)."""
    last_24h = executions_since(now - timedelta(hours=24))
    document = Stats.of(tasks=task_counts(), executions={"total": last_24h, "by_status": {}, "last_24h": last_24h},
                        next_runs=next_runs(), **redis_state(), notifications=notification_counts())
    return {**document, "executions": {"last_24h": last_24h}}


def notification_counts() -> dict[str, Any]:
    return {"unread": db.session.scalar(
        select(func.count()).select_from(Notification).where(Notification.read.is_(False)))}


def task_counts() -> dict[str, Any]:
    by_status = dict(db.session.execute(select(Task.status, func.count()).group_by(Task.status)).all())
    return {
        "total": sum(by_status.values()),
        "enabled": db.session.scalar(select(func.count()).select_from(Task).where(Task.enabled.is_(True))),
        "by_status": by_status,
    }


def execution_counts(now: datetime) -> dict[str, Any]:
    by_status = dict(db.session.execute(select(Execution.status, func.count()).group_by(Execution.status)).all())
    return {"total": sum(by_status.values()), "by_status": by_status,
            "last_24h": executions_since(now - timedelta(hours=24))}


def executions_since(since: datetime) -> int:
    return db.session.scalar(select(func.count()).select_from(Execution).where(Execution.created_at >= since)) or 0


def next_runs(limit: int = NEXT_RUNS_COUNT) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(Task.id, Task.name, Task.next_run_at)
        .where(Task.enabled.is_(True), Task.next_run_at.is_not(None))
        .order_by(Task.next_run_at, Task.id).limit(limit)
    ).all()
    return [{"task_id": r.id, "name": r.name, "next_run_at": r.next_run_at} for r in rows]


def redis_state() -> dict[str, Any]:
    """Return queues, workers, scheduler and reconciler state, or nulls when Redis is down."""
    try:
        connection = get_redis()
        engine = health.engine_state(connection, now_epoch=time.time())
        report = health.last_reconcile_report(connection)
        queues = health.queue_depths(connection)
    except RedisError:
        return {
            "queues": None,
            "workers": {"count": None, "names": []},
            "scheduler": {"alive": False, "last_heartbeat": None},
            "reconciler": {"last_run_at": None, "last_report": None},
        }
    scheduler, workers = engine["scheduler"], engine["workers"]
    last_beat = scheduler["last_heartbeat"]
    return {
        "queues": queues,
        "workers": {"count": len(workers), "names": workers},
        "scheduler": SchedulerState.of(
            alive=scheduler["alive"],
            last_heartbeat=datetime.fromtimestamp(last_beat, timezone.utc) if last_beat else None,
        ),
        "reconciler": {
            "last_run_at": report.get("finished_at") if report else None,
            "last_report": report,
        },
    }
