"""The engine in this process: the scheduler's dispatch pass and the Procfile's worker class, called directly.

`InProcessEngine` plays the two engine processes in turn, in the test's own process and thread:
`dispatch(now)` is one pass of the scheduler (`ChimeScheduler.dispatch_due`), `work()` runs RQ's
`SimpleWorker(...).work(burst=True)` (as `scheduler.worker.ChimeWorker`) until the queues are empty.
Time can jump (`run_next`: dispatch the next occurrence at its own due time, without waiting for it)
or pass for real (`run_until`: dispatch what is due now and work it off, until a condition holds).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from rq import SimpleWorker
from rq.job import Job

from chime import occurrence as occ
from chime.models import QUEUE_NAMES
from chime.timeutil import utcnow
from scheduler.boundary import PlainPickleSerializer
from scheduler.dispatch import ChimeScheduler
from scheduler.worker import ChimeWorker
from tests.engine_fixtures import wait_for


class BurstWorker(ChimeWorker):
    """The Procfile's worker class without RQ's command channel, for `work(burst=True)` in a test.

    RQ's worker listens for commands (shutdown, kill-horse, stop-job: Chime sends none) on a pub/sub
    thread that RQ's teardown waits up to 1 s for; a burst in a test takes no commands, so it does not
    subscribe and each burst ends as soon as the queues are empty.
    """

    def subscribe(self) -> None:
        pass


def work_off(connection: Any) -> None:
    """Run every queued job, in this process, until the queues are empty (`rq worker --burst`).

    The worker's app is `scheduler.worker._app`: a test sets it to its own app first.
    """
    BurstWorker(list(QUEUE_NAMES), connection=connection).work(burst=True)


def start_without_finishing(connection: Any, queue: str) -> Job:
    """A worker takes the first job off `queue` and starts it as RQ's worker does -- an execution in the
    queue's started registry, scored with when the worker's heartbeat expires; the job's status `started`
    -- and goes no further: the state a worker killed (kill -9) in the middle of the job leaves behind."""
    worker = SimpleWorker([queue], connection=connection, serializer=PlainPickleSerializer)
    taken = worker.dequeue_job_and_maintain_ttl(timeout=None)
    assert taken is not None, f"nothing waits on {queue}"
    job, _ = taken
    worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    return job


class InProcessEngine:
    """One dispatcher and one burst worker, run one after the other in this process."""

    def __init__(self, connection: Any, app: Any, work: Callable[[], None]) -> None:
        self.connection = connection
        self.scheduler = ChimeScheduler(connection, app, name="in-process")
        self.work = work

    def dispatch(self, now: datetime | None = None) -> int:
        """One dispatch pass as of `now` (default: the real time); return how many occurrences were due."""
        return self.scheduler.dispatch_due(now or utcnow())

    def next_due_at(self) -> datetime | None:
        """The due time of the earliest occurrence in the schedule, None when none is scheduled."""
        for job_id, score in self.connection.zrange(occ.SCHEDULED_KEY, 0, -1, withscores=True):
            if occ.parse_job_id(job_id.decode()) is not None:
                return datetime.fromtimestamp(score, timezone.utc)
        return None

    def run_next(self) -> datetime:
        """Jump to the earliest scheduled occurrence's due time: dispatch it then, and run what was queued."""
        due_at = self.next_due_at()
        assert due_at is not None, "no occurrence is scheduled"
        self.dispatch(due_at)
        self.work()
        return due_at

    def run_until(self, done: Callable[[], Any], timeout_seconds: float, what: str) -> Any:
        """Let real time pass: dispatch what is due now and run it, again and again, until done() is truthy."""
        def step() -> Any:
            self.dispatch()
            self.work()
            return done()

        return wait_for(step, timeout_seconds, what)


def scheduled_occurrences(connection: Any) -> Counter[int]:
    """Count the scheduled first-attempt occurrences per task in the sorted set."""
    found = (occ.parse_job_id(m.decode()) for m in connection.zrange(occ.SCHEDULED_KEY, 0, -1))
    return Counter(d.task_id for d in found if d is not None and d.attempt == 1 and not d.extra)
