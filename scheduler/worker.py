"""The RQ worker side: build the Flask app once per worker process, not per job.

`rq worker -c scheduler.settings --worker-class scheduler.worker.ChimeWorker --worker-ttl 30 high default low`

Redis is an execution boundary: the worker runs only Chime's own job entry points and reads job
payloads without running code (scheduler.boundary); anything else ends in RQ's failed registry as refused.

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
from rq import Queue, SimpleWorker, worker_registration
from rq.job import JobStatus
from rq.utils import now

from chime.app import freeze_start_up_objects
from scheduler.boundary import ChimeJob, PlainPickleSerializer, refusal

_app: Flask | None = None
REDIS_RETRY_FIRST_SECONDS = 0.5
REDIS_RETRY_MAX_SECONDS = 5.0
REGISTRATION_CHECK_SECONDS = 5.0  # how often a heartbeat checks that the worker is still registered


def worker_app() -> Flask:
    """Return this process's app, building it on first use."""
    global _app
    if _app is None:
        from chime.app import create_app

        _app = create_app()
        os.register_at_fork(after_in_child=_after_fork)
    return _app


PRELOADED_MODULES = ("scheduler.executor", "jobs.builtin", "scheduler.reconcile", "scheduler.retention")


def preload_job_modules() -> None:
    """Import what jobs run before the first job, so it is not slowed by imports."""
    import importlib

    for name in PRELOADED_MODULES:
        importlib.import_module(name)


def _after_fork() -> None:
    """Give a forked child (a forking worker class, a job that forks) its own database connections."""
    if _app is not None:
        from chime.database import dispose_after_fork

        dispose_after_fork(_app)


def _as_list(queues: Any) -> list[Any]:
    return [queues] if isinstance(queues, (str, Queue)) else list(queues)


class ChimeWorker(SimpleWorker):
    """A standard RQ worker that builds the app once and runs jobs in its own process.

    RQ's forking worker pays a fork, a fresh SQLAlchemy statement cache and fresh imports for
    every job (about 200 ms here); running in-process keeps them warm (see BENCHMARKS.md). Chime's
    executor enforces each task's timeout itself and never lets a job's exception escape, and a
    worker that dies mid-job is detected by the reconciler like a lost machine. It also registers
    itself again when Redis comes back empty (restart, FLUSHALL), so `rq info` keeps seeing it.

    Whatever `rq worker` passes (--job-class, --serializer, queues built with RQ's pickle serializer),
    it reads jobs as ChimeJob with PlainPickleSerializer and refuses any job that is not Chime's own.
    """

    _job_performing = False  # set once RQ is about to call the current job's function
    _registration_checked_at: float | None = None  # time.monotonic() of the last registration check

    def __init__(self, queues: Any, *args: Any, **kwargs: Any) -> None:
        given = _as_list(queues)
        names = [queue.name if isinstance(queue, Queue) else queue for queue in given]
        if kwargs.get("connection") is None:
            kwargs["connection"] = next((q.connection for q in given if isinstance(q, Queue)), None)
        kwargs.update(job_class=ChimeJob, serializer=PlainPickleSerializer)
        super().__init__(names, *args, **kwargs)
        worker_app()
        preload_job_modules()
        freeze_start_up_objects()

    def perform_job(self, job: Any, queue: Any) -> bool:
        """Run one of Chime's own jobs; record anything else as refused without importing or calling it."""
        reason = refusal(job)
        if reason is None:
            return super().perform_job(job, queue)
        self.log.warning("Worker %s: job %s from queue %s not run: %s", self.name, job.id, queue.name, reason)
        job.retries_left = None  # a refused job is never retried
        job.ended_at = now()
        self.handle_job_failure(job, queue, exc_string=reason)
        return False

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
        else:
            self._until_redis_answers(lambda: self._heartbeat_now(timeout))

    def _heartbeat_now(self, timeout: int | None) -> None:
        if self.birth_date is not None and self._registration_check_due() and not self._is_registered():
            self.log.warning("Worker %s: registration lost (Redis restarted?); registering again", self.name)
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, pipe)
                pipe.execute()
        super().heartbeat(timeout)

    def set_state(self, state: str, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().set_state(state, pipeline)
        else:
            self._until_redis_answers(lambda: super(ChimeWorker, self).set_state(state))

    def _until_redis_answers(self, call: Any) -> None:
        """Run one of RQ's loop-level writes; if Redis is unreachable (a restart, a Sentinel failover
        under way), wait for it and try again: RQ's loop would otherwise quit on the error."""
        while True:
            try:
                return call()
            except (RedisConnectionError, RedisTimeoutError) as error:
                self.log.warning("Worker %s: cannot reach Redis (%s); waiting for it", self.name, error)
                self._wait_for_redis()

    def execute_job(self, job: Any, queue: Any) -> None:
        """Run a job; if Redis goes away meanwhile (a restart, a Sentinel failover), wait for it
        instead of quitting. A job whose function had not started then is run once Redis is back
        (it was already popped from its queue: dropping it would leave its task looking busy, and
        the executor ignores a delivery of an occurrence already claimed); one whose function ran is
        marked finished, so a `started` status the new master kept does not keep its task busy."""
        while True:
            self._job_performing = False
            try:
                super().execute_job(job, queue)
                return
            except (RedisConnectionError, RedisTimeoutError) as error:
                self.log.warning("Worker %s: Redis lost while running %s (%s); waiting for it", self.name, job.id, error)
                self._wait_for_redis()
            if self._job_performing:
                self._until_redis_answers(lambda: self._mark_finished(job))
                return
            self.log.warning("Worker %s: job %s had not started when Redis was lost; running it now", self.name, job.id)

    def prepare_job_execution(self, job: Any, remove_from_intermediate_queue: bool = False) -> None:
        super().prepare_job_execution(job, remove_from_intermediate_queue)
        self._job_performing = True  # RQ calls the job's function next

    def _mark_finished(self, job: Any) -> None:
        if self.connection.hget(job.key, "status") == JobStatus.STARTED.value.encode():
            job.set_status(JobStatus.FINISHED)

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

    def _registration_check_due(self, now: float | None = None) -> bool:
        """Whether this heartbeat checks the registration: at most once per REGISTRATION_CHECK_SECONDS, not
        with every dequeue (RQ beats before each one); a worker Redis forgot registers again within that."""
        now = time.monotonic() if now is None else now
        if self._registration_checked_at is not None and now - self._registration_checked_at < REGISTRATION_CHECK_SECONDS:
            return False
        self._registration_checked_at = now
        return True

    def _is_registered(self) -> bool:
        try:
            return bool(self.connection.sismember(worker_registration.REDIS_WORKER_KEYS, self.key))
        except RedisError:
            return True
