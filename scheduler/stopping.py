"""Stopping a running job inside Chime's in-process worker, which runs each job in its own main thread.

RQ's `send_stop_job_command` kills a forking worker's work horse; Chime's worker has none (it is a
SimpleWorker), so a stop works like the task timeout does: an exception raised inside the job.

- `POST /api/logs/<id>/stop/` (chime.run_control) sets the run's stop key in Redis (redis_keys.STOP_KEY).
- The worker process's liveness thread (scheduler.liveness, beating for the run through
  scheduler.executor.liveness) reads that key with every beat and calls `StopSwitch.trip`, which sends
  STOP_SIGNAL to the main thread (`signal.pthread_kill`): a blocking call there (time.sleep, a socket read,
  waiting for a child process) returns at once.
- The signal's handler raises JobStopped in the main thread, inside the job, while the job runs (the
  switch is armed only around the job function, so the executor's own bookkeeping is never interrupted).
  It is a BaseException: a job's `except Exception` does not swallow it; a job that swallows it anyway
  gets it again with the next beat while the stop key lasts.
- The executor records the run CANCELLED (lifecycle.stopped), never retried.

A C extension call that never returns to Python (a long computation in native code) cannot be
interrupted this way; the task's timeout then ends it as it ends any job.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNAL = signal.SIGUSR1  # free in RQ's worker (it uses SIGINT, SIGTERM, SIGALRM, SIGRTMIN)


class JobStopped(BaseException):
    """Raised inside a running job when an operator stopped its run."""


class StopSwitch:
    """The stop of one run: tripped by the liveness thread, raising JobStopped in the main thread's job."""

    def __init__(self) -> None:
        self.requested_by: str | None = None  # who asked (set on the first trip)
        self._requested = False
        self._armed = False
        self._lock = threading.Lock()

    @property
    def requested(self) -> bool:
        return self._requested

    def trip(self, actor: str) -> None:
        """The run was asked to stop (from any thread): interrupt the job if it is running."""
        with self._lock:
            if not self._requested:
                self._requested, self.requested_by = True, actor
            if self._armed:
                signal.pthread_kill(threading.main_thread().ident or 0, STOP_SIGNAL)

    @contextmanager
    def armed(self) -> Iterator[None]:
        """Let a trip interrupt the block (the job function); raise JobStopped at once if already tripped.

        Outside the main thread a signal cannot reach the job: the block runs to its end (or its timeout).
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        _install_handler()
        global _current
        with self._lock:
            if self._requested:
                raise JobStopped()
            self._armed, _current = True, self
        try:
            yield
        finally:
            with self._lock:
                self._armed, _current = False, None


_current: StopSwitch | None = None  # the armed switch of the job running in the main thread


def _on_stop_signal(_signum: int, _frame: Any) -> None:
    switch = _current
    if switch is not None and switch._armed:
        raise JobStopped()


def _install_handler() -> None:
    """Install the handler for the process and keep it: a late signal (the job just ended) is ignored by
    it instead of killing the process as the default action would."""
    if signal.getsignal(STOP_SIGNAL) is not _on_stop_signal:
        signal.signal(STOP_SIGNAL, _on_stop_signal)
