"""A worker process's liveness beat: one thread per process beats the alive key of the run it executes.

Chime's worker runs one job at a time in its main thread, so one beating thread per process is enough;
it is started with the first run and kept (it sleeps while no run is watched). While a run is watched,
every ALIVE_BEAT_SECONDS it sends one pipeline: SET the run's alive key (the process id, TTL
ALIVE_TTL_SECONDS) and GET its stop key, and calls the run's `on_stop(who asked)` while the stop key is
set (scheduler.stopping). The first beat comes ALIVE_BEAT_SECONDS after the run is watched: a run
shorter than that never writes its key, so it has none to delete either. The reconciler judges only runs
claimed at least ALIVE_TTL_SECONDS ago (scheduler.reconcile: LOST_AFTER_SECONDS), by which time a live
run has beaten several times; a killed or frozen process stops beating and its run's key expires.

`watch` and `unwatch` are called by the executor around the job and its record; a beat never overlaps
an `unwatch` (one lock), so no key is written after its run was let go.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from chime import occurrence as occ
from chime.redis_keys import alive_key, stop_key

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Watched:
    """A run being beaten for: its keys, its stop callback, and whether its alive key was written."""

    connection: Any
    execution_id: int
    on_stop: Callable[[str], None] | None
    due_at: float  # time.monotonic() of its next beat
    beaten: bool = field(default=False)


class Beater:
    """The process's liveness thread and the run it currently beats for (at most one)."""

    def __init__(self, beat_seconds: float = occ.ALIVE_BEAT_SECONDS, ttl_seconds: int = occ.ALIVE_TTL_SECONDS) -> None:
        self.beat_seconds = beat_seconds
        self.ttl_seconds = ttl_seconds
        self._condition = threading.Condition()
        self._watched: Watched | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def watch(self, connection: Any, execution_id: int, on_stop: Callable[[str], None] | None = None) -> Watched:
        """Beat for `execution_id` from now on (its first beat after beat_seconds), until `unwatch`."""
        with self._condition:
            self._start_thread_once()
            self._watched = Watched(connection, execution_id, on_stop, time.monotonic() + self.beat_seconds)
            self._condition.notify()
            return self._watched

    def unwatch(self, watched: Watched) -> bool:
        """Stop beating for the run; return whether its alive key was written (the caller deletes it)."""
        with self._condition:
            if self._watched is watched:
                self._watched = None
            return watched.beaten

    def _start_thread_once(self) -> None:
        """Start the thread on first use (and again in a forked child, where threads do not survive)."""
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._loop, name="chime-liveness", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        with self._condition:
            while True:
                watched = self._watched
                if watched is None:
                    self._condition.wait()
                    continue
                delay = watched.due_at - time.monotonic()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                self._beat(watched)
                watched.due_at = time.monotonic() + self.beat_seconds

    def _beat(self, watched: Watched) -> None:
        """One beat, under the lock (an unwatch waits for it): refresh the alive key, read the stop key."""
        try:
            with watched.connection.pipeline(transaction=False) as pipe:
                pipe.set(alive_key(watched.execution_id), os.getpid(), ex=self.ttl_seconds)
                pipe.get(stop_key(watched.execution_id))
                _, requested_by = pipe.execute()
            watched.beaten = True
        except RedisError as error:
            watched.beaten = True  # the SET may have reached Redis: let the caller delete the key
            log.warning("Liveness beat of execution %s failed: %s", watched.execution_id, error)
            return
        if requested_by is not None and watched.on_stop is not None:
            try:
                watched.on_stop(requested_by.decode(errors="replace"))
            except Exception:  # noqa: BLE001 - the beat must go on whatever a stop callback does
                log.exception("Stop of execution %s could not be signalled", watched.execution_id)


BEATER = Beater()  # the process's one beater
