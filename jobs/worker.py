"""The RQ worker side: build the Flask app once per worker process, not per job.

`rq worker -c jobs.settings --worker-class jobs.worker.ChimeWorker --worker-ttl 30 high default low`

--worker-ttl 30: an idle worker refreshes its registration every 15 s and a dead one leaves `rq info`
(and the dashboard's worker count) within 90 s instead of RQ's default 8 minutes. A busy worker's
registration lasts its job's timeout + 60 s, as in RQ.
"""
from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker, worker_registration

_app: Flask | None = None
REDIS_RETRY_FIRST_SECONDS = 0.5
REDIS_RETRY_MAX_SECONDS = 5.0


def worker_app() -> Flask:
    """Return this process's app, building it on first use."""
    global _app
    if _app is None:
        from webapp import create_app

        _app = create_app()
        os.register_at_fork(after_in_child=_after_fork)
    return _app


PRELOADED_MODULES = ("jobs.executor", "jobs.builtin", "scheduler.reconcile", "webapp.retention")


def preload_job_modules() -> None:
    """Import what jobs run before the first job, so it is not slowed by imports."""
    import importlib

    for name in PRELOADED_MODULES:
        importlib.import_module(name)


def _after_fork() -> None:
    """Give a forked child (a forking worker class, a job that forks) its own database connections."""
    if _app is not None:
        from webapp.database import dispose_after_fork

        dispose_after_fork(_app)


class ChimeWorker(SimpleWorker):
    """A standard RQ worker that builds the app once and runs jobs in its own process.

    RQ's forking worker pays a fork, a fresh SQLAlchemy statement cache and fresh imports for
    every job (about 200 ms here); running in-process keeps them warm (see BENCHMARKS.md). Chime's
    executor enforces each task's timeout itself and never lets a job's exception escape, and a
    worker that dies mid-job is detected by the reconciler like a lost machine. It also registers
    itself again when Redis comes back empty (restart, FLUSHALL), so `rq info` keeps seeing it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        worker_app()
        preload_job_modules()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is None and self.birth_date is not None and not self._is_registered():
            self.log.warning("Worker %s: registration lost (Redis restarted?); registering again", self.name)
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, pipe)
                pipe.execute()
        super().heartbeat(timeout, pipeline)

    def execute_job(self, job: Any, queue: Any) -> None:
        """Run a job; if Redis goes away meanwhile, wait for it instead of quitting."""
        try:
            super().execute_job(job, queue)
        except (RedisConnectionError, RedisTimeoutError) as error:
            self.log.warning("Worker %s: Redis lost while running %s (%s); waiting for it", self.name, job.id, error)
            self._wait_for_redis()

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except (RedisConnectionError, RedisTimeoutError):
            self._wait_for_redis()

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except (RedisConnectionError, RedisTimeoutError):
            self._wait_for_redis()

    def _wait_for_redis(self) -> None:
        delay = REDIS_RETRY_FIRST_SECONDS
        while True:
            try:
                self.connection.ping()
                self.log.info("Worker %s: Redis is back", self.name)
                return
            except (RedisConnectionError, RedisTimeoutError):
                time.sleep(delay)
                delay = min(delay * 2, REDIS_RETRY_MAX_SECONDS)

    def _is_registered(self) -> bool:
        try:
            return bool(self.connection.sismember(worker_registration.REDIS_WORKER_KEYS, self.key))
        except RedisError:
            return True
