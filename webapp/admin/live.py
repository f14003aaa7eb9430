"""GET /events: the admin's live stream (Server-Sent Events, webapp.live) for the signed-in browser."""
from __future__ import annotations

from typing import Any

from flask import Response, current_app

from chime.enums import Role
from webapp.admin.blueprint import bp
from webapp.auth import allow
from webapp.live import BUSY_RETRY_AFTER_SECONDS, EventStream, hub_for

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}  # never cached, never buffered by nginx


@bp.get("/events")
@allow(Role.VIEWER)
def live_events() -> Any:
    """Change and engine events as they happen; 503 with Retry-After when this process holds its maximum
    of open streams (the page then polls instead)."""
    hub = hub_for(current_app.config["REDIS_URL"])
    inbox = hub.subscribe(current_app.config.get("LIVE_MAX_STREAMS", 80))
    if inbox is None:
        return Response("Too many live streams on this server; polling instead.\n", 503, mimetype="text/plain",
                        headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS), "Cache-Control": "no-store"})
    return Response(EventStream(hub, inbox), mimetype="text/event-stream", headers=SSE_HEADERS)
