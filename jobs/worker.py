"""The RQ worker side: build the Flask app once per worker process, not per job.

`rq worker -c jobs.settings --worker-class jobs.worker.ChimeWorker high default low`
"""
from __future__ import annotations

import os
from typing import Any

from flask import Flask
from redis.exceptions import RedisError
from rq import Worker, worker_registration

_app: Flask | None = None


def worker_app() -> Flask:
    """Return this process's app, building it on first use."""
    global _app
    if _app is None:
        from webapp import create_app

        _app = create_app()
        os.register_at_fork(after_in_child=_after_fork)
    return _app


def _after_fork() -> None:
    """Give each forked work horse its own database connections."""
    if _app is not None:
        from webapp.database import dispose_after_fork

        dispose_after_fork(_app)


class ChimeWorker(Worker):
    """A standard RQ worker that builds the app before it forks work horses.

    It also registers itself again when Redis comes back empty (restart, FLUSHALL),
    so `rq info` and the dashboard keep seeing it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        worker_app()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is None and self.birth_date is not None and not self._is_registered():
            self.log.warning("Worker %s: registration lost (Redis restarted?); registering again", self.name)
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, pipe)
                pipe.execute()
        super().heartbeat(timeout, pipeline)

    def _is_registered(self) -> bool:
        try:
            return bool(self.connection.sismember(worker_registration.REDIS_WORKER_KEYS, self.key))
        except RedisError:
            return True
