"""JSON for the dashboard's live engine card and banner (app.js polls it every few seconds)."""
from __future__ import annotations

from typing import Any

from flask import jsonify

from webapp import queries
from chime.enums import Role
from webapp.admin.blueprint import bp
from webapp.admin.views import engine_alerts
from webapp.auth import allow
from webapp.stats import redis_state


@bp.get("/engine/live")
@allow(Role.VIEWER)
def engine_live() -> Any:
    """The engine's state as the dashboard shows it, with the banner's alerts: one source for both."""
    state = redis_state()
    unread, _latest = queries.unread_notifications()
    return jsonify({
        "alerts": engine_alerts(state),
        "scheduler": state["scheduler"],
        "workers": state["workers"],
        "queues": state["queues"],
        "reconciler": {"last_run_at": state["reconciler"]["last_run_at"]},
        "notifications": {"unread": unread},
    })
