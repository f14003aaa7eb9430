"""The server-rendered admin blueprint: its routes are in the modules imported below."""
from __future__ import annotations

from webapp.admin.blueprint import bp
from webapp.admin import engine, logs, notifications, task_controls, tasks, views  # noqa: F401  (routes)
from webapp.admin import graph  # noqa: F401  (routes)
from webapp.admin import queues  # noqa: F401  (routes)
from webapp.admin import users  # noqa: F401  (routes)
from webapp.admin import live  # noqa: F401  (routes)

from webapp.admin import audit  # noqa: F401  (routes)
from webapp.admin import channels  # noqa: F401  (routes)
from webapp.admin import rules  # noqa: F401  (routes)

__all__ = ["bp"]
