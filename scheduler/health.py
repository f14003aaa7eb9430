"""Liveness of the engine as Redis shows it: heartbeats, queue depths, workers, last reconcile."""
from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis
from rq import Worker

from chime.policy import SCHEDULER_STALE_AFTER_SECONDS
from chime.redis_keys import QUEUE_NAMES, RECONCILE_REPORT_KEY, SCHEDULER_HEARTBEAT_KEY, queue_key

HEARTBEAT_TTL_SECONDS = 60


def beat_scheduler(connection: Redis, name: str, active: bool, *, now_epoch: float | None = None) -> None:
    """Record that scheduler `name` is alive at `now_epoch` (default: now), and whether it holds the lock."""
    at = time.time() if now_epoch is None else now_epoch
    payload = json.dumps({"name": name, "active": active, "at": at})
    with connection.pipeline() as pipe:
        pipe.hset(SCHEDULER_HEARTBEAT_KEY, name, payload)
        pipe.expire(SCHEDULER_HEARTBEAT_KEY, HEARTBEAT_TTL_SECONDS)
        pipe.execute()


def scheduler_state(connection: Redis, *, now_epoch: float) -> dict[str, Any]:
    """Return the schedulers' liveness (see `heartbeat_state`) from their heartbeats in Redis."""
    beats = [json.loads(v) for v in connection.hgetall(SCHEDULER_HEARTBEAT_KEY).values()]
    return heartbeat_state(beats, now_epoch=now_epoch)


def heartbeat_state(beats: list[dict[str, Any]], *, now_epoch: float) -> dict[str, Any]:
    """Whether a scheduler dispatches: the lock holder beat within SCHEDULER_STALE_AFTER_SECONDS.

    `status` is "ok", "stale" (the last lock holder's beat is older than that) or "missing" (no
    lock holder ever beat: none running, or only a standby that has not taken over yet).
    `alive` is status == "ok": the dashboard, /api/stats/, /api/health/ and the metrics all read it.
    """
    last_active = max((b["at"] for b in beats if b.get("active")), default=None)
    if last_active is None:
        status = "missing"
    else:
        status = "ok" if now_epoch - last_active <= SCHEDULER_STALE_AFTER_SECONDS else "stale"
    fresh = [b for b in beats if now_epoch - b["at"] <= SCHEDULER_STALE_AFTER_SECONDS]
    return {
        "alive": status == "ok",
        "status": status,
        "last_heartbeat": max((b["at"] for b in beats), default=None),
        "last_active_heartbeat": last_active,
        "instances": sorted(({"name": b["name"], "active": b["active"], "at": b["at"]} for b in fresh),
                            key=lambda b: b["name"]),
    }


def engine_state(connection: Redis, *, now_epoch: float) -> dict[str, Any]:
    """The schedulers' liveness and the registered workers' names: one read for every health view."""
    return {"scheduler": scheduler_state(connection, now_epoch=now_epoch), "workers": worker_names(connection)}


def queue_depths(connection: Redis) -> dict[str, int]:
    """Return the number of jobs waiting on each queue."""
    with connection.pipeline(transaction=False) as pipe:
        for name in QUEUE_NAMES:
            pipe.llen(queue_key(name))
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
