"""The RQ worker side: build the Flask app once per worker process, not per job.

`rq worker -c jobs.settings --worker-class jobs.worker.ChimeWorker high default low`
"""
from __future__ import annotations

import os
from typing import Any

from flask import Flask
from rq import Worker

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
    """A standard RQ worker that builds the app before it forks work horses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        worker_app()
