"""What a Chime worker agrees to run from Redis: Chime's own entry points, read without running code.

Anyone who can write to Redis can put a job on a queue. RQ would import and call whatever function the
job names, and its default serializer is pickle, whose loader can call any importable function while
reading the payload. A Chime worker therefore:

- reads job payloads with :class:`PlainPickleSerializer`: the same pickle format (so jobs written by the
  scheduler, the web app and rq-scheduler need no change), but loading refuses every reference to a
  Python object: only plain data (str, bytes, numbers, None, bools, tuples, lists, dicts, sets) loads;
- runs a job only when :func:`refusal` finds nothing to refuse: its function is one of
  :data:`ENTRY_POINTS`, it is not a method of a pickled instance, and it names no callback;
- never calls a callback or sends a webhook a job names (:class:`ChimeJob`), whatever path RQ takes.
"""
from __future__ import annotations

import io
import logging
import pickle
from functools import partial
from typing import Any, ClassVar

from rq.exceptions import DeserializationError
from rq.job import Job
from rq.utils import import_attribute

log = logging.getLogger(__name__)

# Every function Chime puts on a queue: the executor (chime.occurrence.EXECUTE_FUNC) and the two
# periodic jobs the dispatcher pushes (scheduler.periodic.periodic_jobs), also queued on request (POST /api/reconcile/).
ENTRY_POINTS = frozenset({
    "scheduler.executor.execute",
    "scheduler.alerts.deliver",  # chime.alerts.DELIVER_FUNC: one attempt of an alert delivery
    "scheduler.reconcile.run_reconcile",
    "scheduler.retention.run_prune",
})

# The names the same entry points had before Chime's packages were layered (jobs written to Redis by an
# earlier release and still waiting there run, under their current name, after an upgrade).
RENAMED_ENTRY_POINTS = {
    "jobs.executor.execute": "scheduler.executor.execute",
    "webapp.retention.run_prune": "scheduler.retention.run_prune",
}


class RefusedJobError(Exception):
    """A job that is not one of Chime's entry points; its message starts with "refused:"."""


class _PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that loads plain data only: any global (function, class, module) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: a job payload holds plain data only")


def _plain_loads(data: bytes) -> Any:
    return _PlainDataUnpickler(io.BytesIO(data)).load()


class PlainPickleSerializer:
    """RQ's pickle format, loaded without ever importing or calling anything (see the module docstring)."""

    dumps: ClassVar[Any] = partial(pickle.dumps, protocol=pickle.HIGHEST_PROTOCOL)
    loads: ClassVar[Any] = staticmethod(_plain_loads)


def refusal(job: Job) -> str | None:
    """Say why a worker must not run ``job`` ("refused: ..."), or None for one of Chime's own jobs.

    Reads only the job's already-loaded hash and its payload through the job's serializer, which for a
    Chime worker is PlainPickleSerializer: nothing is imported or called.
    """
    try:
        func_name, instance = job.func_name, job.instance
    except DeserializationError as error:
        cause = error.__cause__ or error
        return f"refused: job {job.id}'s payload is not plain data ({cause}); it is not a Chime job entry point"
    if func_name not in ENTRY_POINTS and func_name not in RENAMED_ENTRY_POINTS:
        return f"refused: {func_name!r} is not a Chime job entry point"
    if instance is not None:
        return f"refused: {func_name!r} called on a pickled object is not a Chime job entry point"
    callbacks = [name for name in (job._success_callback_name, job._failure_callback_name,
                                   job._stopped_callback_name) if name]
    if callbacks:
        return f"refused: callback {callbacks[0]!r} is not a Chime job entry point"
    return None


class ChimeJob(Job):
    """An RQ job that never imports a function, callback or webhook its hash names unless Chime owns it."""

    @property
    def func(self) -> Any:
        reason = refusal(self)
        if reason is not None:
            raise RefusedJobError(reason)
        if self.func_name in RENAMED_ENTRY_POINTS:
            return import_attribute(RENAMED_ENTRY_POINTS[self.func_name])
        return super().func

    @property
    def success_callback(self) -> None:
        return self._ignored_callback(self._success_callback_name)

    @property
    def failure_callback(self) -> None:
        return self._ignored_callback(self._failure_callback_name)

    @property
    def stopped_callback(self) -> None:
        return self._ignored_callback(self._stopped_callback_name)

    def _ignored_callback(self, name: str | None) -> None:
        if name:
            log.warning("Job %s: not calling callback %r: it is not a Chime job entry point", self.id, name)
        return None

    def send_webhooks(self, status: Any, *, exc_string: str | None = None) -> None:
        if self.webhooks:
            log.warning("Job %s: not sending %d webhook(s): Chime jobs have none", self.id, len(self.webhooks))
