"""The server-rendered admin blueprint."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__, template_folder="../templates")

from webapp.admin import helpers  # noqa: E402

helpers.register(bp)

from webapp.admin import engine, logs, notifications, tasks, views  # noqa: E402,F401  (routes)
