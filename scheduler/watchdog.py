"""The watchdog's edge: read the engine's state from Redis and hand it to chime.watchdog, which decides.

Run by the alerts worker (scheduler.alerts.AlertsWorker starts a thread for it: a pass every
WATCHDOG_INTERVAL_SECONDS), a process that is neither the scheduler nor a task worker, so `scheduler_down`, `no_workers` and `missed` are
noticed while those are dead. Several alerts workers may run it: the episode state rows make the second
pass of a moment find nothing new to say.
"""
from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from redis import Redis
from rq import Worker

from chime import watchdog
from chime.models import Task
from chime.extensions import db
from chime.occurrence import parse_job_id
from chime.redis_keys import QUEUE_NAMES, queue_key
from chime.timeutil import utcnow
from scheduler import health

log = logging.getLogger(__name__)

QUEUE_HEAD = 200  # the oldest jobs read from each task queue (RQ pops from the head)


def observe(connection: Redis) -> watchdog.Observation:
    """The scheduler's liveness, the task workers registered and the oldest queued occurrences."""
    status = health.scheduler_state(connection, now_epoch=time.time())["status"]
    task_workers = sum(1 for w in Worker.all(connection=connection) if set(w.queue_names()) & set(QUEUE_NAMES))
    return watchdog.Observation(status, task_workers, queued_occurrences(connection))


def queued_occurrences(connection: Redis) -> list[watchdog.Due]:
    """The scheduled occurrences waiting on the task queues (not manual runs), with their task's grace."""
    with connection.pipeline(transaction=False) as pipe:
        for name in QUEUE_NAMES:
            pipe.lrange(queue_key(name), 0, QUEUE_HEAD - 1)
        heads = pipe.execute()
    jobs = [job for head in heads for raw in head if (job := parse_job_id(raw.decode())) and not job.manual]
    if not jobs:
        return []
    graces = dict(db.session.execute(db.select(Task.id, Task.misfire_grace_seconds)
                                     .where(Task.id.in_({j.task_id for j in jobs}))).all())
    return [watchdog.Due(j.task_id, j.scheduled_for, graces[j.task_id], "queue") for j in jobs if j.task_id in graces]


def watch(connection: Redis) -> list[str]:
    """One pass: observe, decide and emit; return the events emitted."""
    try:
        seen = observe(connection)
    finally:
        db.session.rollback()  # the grace read must not keep a transaction open (SQLite's lock)
    events = watchdog.watch(seen, utcnow())
    if events:
        log.warning("Watchdog emitted %s", ", ".join(events))
    return events


_thread: threading.Thread | None = None


def start() -> None:
    """Start this process's watchdog thread, unless it runs (the alerts worker calls this as it starts).

    The passes run on a thread of their own, every WATCHDOG_INTERVAL_SECONDS, so a delivery that takes
    minutes (a slow SMTP server) does not hold back `scheduler_down` or `missed`.
    """
    from scheduler.worker import worker_app

    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(target=watch_forever, args=(worker_app(),), name="chime-watchdog", daemon=True)
        _thread.start()


def watch_forever(app: Flask) -> None:
    while True:
        with app.app_context():
            interval = watchdog.setting("WATCHDOG_INTERVAL_SECONDS")
            watch_once()
        time.sleep(interval)


def watch_once() -> None:
    """One pass; a failing pass (the database or Redis away) is logged and tried again next time."""
    from chime.extensions import get_redis

    try:
        watch(get_redis())
    except Exception:  # noqa: BLE001 - the watchdog must outlive any one bad pass
        log.exception("Watchdog pass failed; trying again at the next one")
    finally:
        db.session.remove()
