"""The alerts worker: RQ jobs that deliver alerts, on their own queue, so a slow channel never delays a run.

`rq worker -c scheduler.settings --worker-class scheduler.alerts.AlertsWorker --worker-ttl 30 alerts`
(the Procfile's `alerts` process). Besides running delivery jobs, the worker sweeps the database every
ALERT_SWEEP_INTERVAL_SECONDS (default 5 s) for pending deliveries that are due -- retries whose backoff
has passed, pushes lost with Redis, attempts whose worker died -- and queues them (chime.alerts.sweep).
It needs neither the scheduler nor a task worker: alerts keep flowing while those are down.
"""
from __future__ import annotations

import logging
import time
from typing import Any

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


class AlertsWorker(ChimeWorker):
    """The Procfile's worker class, sweeping for due deliveries between jobs and while idle.

    RQ's loop beats (`heartbeat`) before every wait for a job and after every job; the idle wait is cut
    to the sweep interval, so a retry is queued within about that long of its due time.
    """

    _last_sweep = float("-inf")

    def work(self, burst: bool = False, **kwargs: Any) -> bool:
        if not burst:  # the Procfile's process: its watchdog thread notices missed runs, a dead scheduler ...
            watchdog.start()  # (scheduler/watchdog.py; not in a burst, which tests run in their own process)
        return super().work(burst, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        return max(1, int(self._sweep_interval()))

    def _sweep_interval(self) -> float:
        with worker_app().app_context():
            return alerts.setting("ALERT_SWEEP_INTERVAL_SECONDS")

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)
        if pipeline is None and time.monotonic() - self._last_sweep >= self._sweep_interval():
            self._last_sweep = time.monotonic()
            try:
                pushed = sweep_now()
            except Exception:  # a sweep that fails (database down) is tried again at the next beat
                log.exception("Alerts sweep failed; trying again in %s s", self._sweep_interval())
                return
            if pushed:
                log.info("Alerts sweep queued %s due deliveries", pushed)
