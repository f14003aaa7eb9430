"""gunicorn settings the Procfile's `web:` line loads (`-c python:webapp.gunicorn_config`).

The worker class and threads are on the command line (README "A live admin"); this module adds the
one hook they need: a stopping worker ends its open live streams (webapp.live) at once, so a graceful
stop or restart does not wait the whole graceful timeout for browsers that would never hang up.
"""
from __future__ import annotations

import signal
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Chain SIGTERM: end the live streams, then gunicorn's own graceful stop."""
    from webapp.live import end_all_streams

    stop = worker.handle_exit

    def end_streams_then_stop(signum: int, frame: Any) -> None:
        end_all_streams()
        stop(signum, frame)

    signal.signal(signal.SIGTERM, end_streams_then_stop)
