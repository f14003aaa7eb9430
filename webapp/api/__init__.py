"""The JSON API blueprint: HTTP glue only; the work is in chime.services. Routes: the modules below."""
from __future__ import annotations

from webapp.api.blueprint import bp
from webapp.api import logs, meta, notifications, reconcile, stats, task_controls, tasks  # noqa: F401  (routes)
from webapp.api import queues  # noqa: F401  (routes)
from webapp.api import users  # noqa: F401  (routes)
from webapp.api import graph  # noqa: F401  (routes)

from webapp.api import audit  # noqa: F401  (routes)
from webapp.api import channels  # noqa: F401  (routes)
from webapp.api import rules  # noqa: F401  (routes)

__all__ = ["bp"]
