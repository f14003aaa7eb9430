"""Liveness of the engine as Redis shows it: heartbeats, queue depths, workers, last reconcile."""
from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis
from rq import Queue, Worker

from webapp.models import QUEUE_NAMES

SCHEDULER_HEARTBEAT_KEY = "chime:scheduler:heartbeat"
RECONCILE_REPORT_KEY = "chime:reconciler:last_report"
SCHEDULER_STALE_AFTER_SECONDS = 15
HEARTBEAT_TTL_SECONDS = 60


def beat_scheduler(connection: Redis, name: str, active: bool) -> None:
    """Record that scheduler `name` is alive (and whether it holds the lock)."""
    payload = json.dumps({"name": name, "active": active, "at": time.time()})
    with connection.pipeline() as pipe:
        pipe.hset(SCHEDULER_HEARTBEAT_KEY, name, payload)
        pipe.expire(SCHEDULER_HEARTBEAT_KEY, HEARTBEAT_TTL_SECONDS)
        pipe.execute()


def scheduler_state(connection: Redis, *, now_epoch: float) -> dict[str, Any]:
    """Return {"alive", "last_heartbeat", "instances"} from the schedulers' heartbeats."""
    raw = connection.hgetall(SCHEDULER_HEARTBEAT_KEY)
    beats = [json.loads(v) for v in raw.values()]
    fresh = [b for b in beats if now_epoch - b["at"] <= SCHEDULER_STALE_AFTER_SECONDS]
    last = max((b["at"] for b in beats), default=None)
    return {
        "alive": any(b.get("active") for b in fresh) or bool(fresh),
        "last_heartbeat": last,
        "instances": sorted(({"name": b["name"], "active": b["active"], "at": b["at"]} for b in fresh),
                            key=lambda b: b["name"]),
    }


def queue_depths(connection: Redis) -> dict[str, int]:
    """Return the number of jobs waiting on each queue."""
    with connection.pipeline(transaction=False) as pipe:
        for name in QUEUE_NAMES:
            pipe.llen(Queue.redis_queue_namespace_prefix + name)
        counts = pipe.execute()
    return dict(zip(QUEUE_NAMES, counts))


def worker_names(connection: Redis) -> list[str]:
    """Return the names of the RQ workers registered in Redis."""
    return sorted(w.name for w in Worker.all(connection=connection))


def save_reconcile_report(connection: Redis, report: dict[str, Any]) -> None:
    connection.set(RECONCILE_REPORT_KEY, json.dumps(report))


def last_reconcile_report(connection: Redis) -> dict[str, Any] | None:
    raw = connection.get(RECONCILE_REPORT_KEY)
    return json.loads(raw) if raw else None
