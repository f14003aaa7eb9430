"""The alerts worker: RQ jobs that deliver alerts, on their own queue, so a slow channel never delays a run.

`rq worker -c scheduler.settings --worker-class scheduler.alerts.AlertsWorker --worker-ttl 30 alerts`
(the Procfile's `alerts` process). Besides running delivery jobs, the worker sweeps the database every
ALERT_SWEEP_INTERVAL_SECONDS (default 5 s): it turns the alert outbox into deliveries (chime.rules.drain)
and queues the pending deliveries that are due -- retries whose backoff has passed, pushes lost with
Redis, attempts whose worker died (chime.alerts.sweep). It needs neither the scheduler nor a task worker:
alerts keep flowing while those are down.

The sweep runs on a thread of its own (like the watchdog's passes, scheduler/watchdog.py), not between
jobs: RQ runs one job at a time, and a delivery in progress (up to its deadline) must not hold back the
drain that turns a `scheduler_down` or `missed` event into its delivery, which is queued at the front.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Flask

from chime import alerts, rules
from chime.extensions import db, get_redis
from scheduler import watchdog
from scheduler.worker import ChimeWorker, worker_app

log = logging.getLogger(__name__)


def deliver(delivery_pk: int, attempts_done: int) -> str | None:
    """RQ job entry point: one attempt of one delivery (a no-op for a duplicate or stale job)."""
    with worker_app().app_context():
        try:
            status = alerts.attempt(delivery_pk, attempts_done)
            return status.value if status is not None else None
        finally:
            db.session.remove()


def sweep_now() -> int:
    """One sweep inside the worker's app: queue every due pending delivery; return how many."""
    with worker_app().app_context():
        try:
            drain_rules()
            return alerts.sweep(get_redis())
        finally:
            db.session.remove()


def drain_rules() -> None:
    """Turn the alert outbox into deliveries (chime.rules.drain); a failure is logged and retried next beat."""
    try:
        made = rules.drain()
    except Exception:
        db.session.rollback()
        log.exception("Alert rules drain failed; trying again at the next beat")
        return
    if made:
        log.info("Alert rules made %s deliveries", made)


_sweeper: threading.Thread | None = None


def start_sweeper() -> threading.Thread:
    """Start this process's sweeper thread, unless it runs: a sweep every ALERT_SWEEP_INTERVAL_SECONDS,
    whatever job the worker is running."""
    from scheduler.worker import worker_app

    global _sweeper
    if _sweeper is None or not _sweeper.is_alive():
        _sweeper = threading.Thread(target=sweep_forever, args=(worker_app(),), name="chime-alerts-sweep", daemon=True)
        _sweeper.start()
    return _sweeper


def sweeper_running() -> bool:
    return _sweeper is not None and _sweeper.is_alive()


def sweep_forever(app: Flask, stop: threading.Event | None = None) -> None:
    """Sweep every ALERT_SWEEP_INTERVAL_SECONDS until `stop` is set (never, for the process's thread)."""
    stop = stop or threading.Event()
    while not stop.is_set():
        with app.app_context():
            interval = alerts.setting("ALERT_SWEEP_INTERVAL_SECONDS")
        sweep_logged()
        stop.wait(max(interval, 0.05))


def sweep_logged() -> None:
    """One sweep; a failing one (the database down) is logged and tried again next time."""
    try:
        pushed = sweep_now()
    except Exception:  # noqa: BLE001 - the sweeper must outlive any one bad pass
        log.exception("Alerts sweep failed; trying again at the next one")
        return
    if pushed:
        log.info("Alerts sweep queued %s due deliveries", pushed)


class AlertsWorker(ChimeWorker):
    """The Procfile's worker class. Its process runs two threads besides RQ's loop: the watchdog's passes
    and the sweep, each on its own timer, so neither waits behind a delivery in progress.

    In a burst (tests, run in their own process) there are no threads: RQ's loop beats (`heartbeat`)
    before every wait for a job and after every job, and the sweep runs there.
    """

    _last_sweep = float("-inf")

    def work(self, burst: bool = False, **kwargs: Any) -> bool:
        if not burst:  # the Procfile's process: its watchdog thread notices missed runs, a dead scheduler ...
            watchdog.start()  # (scheduler/watchdog.py; not in a burst, which tests run in their own process)
            start_sweeper()
        return super().work(burst, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        return max(1, int(self._sweep_interval()))

    def _sweep_interval(self) -> float:
        with worker_app().app_context():
            return alerts.setting("ALERT_SWEEP_INTERVAL_SECONDS")

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)
        if sweeper_running():  # the thread sweeps, on its own timer
            return
        if pipeline is None and time.monotonic() - self._last_sweep >= self._sweep_interval():
            self._last_sweep = time.monotonic()
            sweep_logged()
