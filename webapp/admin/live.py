"""GET /events: the admin's live stream (Server-Sent Events, webapp.live) for the signed-in browser."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request, session

from chime.enums import Role
from chime.extensions import db
from chime.models import User
from webapp.admin.blueprint import bp
from webapp.auth import allow, current_user
from webapp.live import BUSY_RETRY_AFTER_SECONDS, EventStream, always, hub_for

log = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}  # never cached, never buffered by nginx


@bp.get("/events")
@allow(Role.VIEWER)
def live_events() -> Any:
    """Change and engine events as they happen; 503 with Retry-After when this process holds its maximum
    of open streams (the page then polls instead). The stream ends when the browser hangs up, or its
    user is disabled or signs out."""
    hub = hub_for(current_app.config["REDIS_URL"])
    user = current_user()
    inbox = hub.subscribe(current_app.config.get("LIVE_MAX_STREAMS", 80), user.id if user is not None else None)
    if inbox is None:
        return Response("Too many live streams on this server; polling instead.\n", 503, mimetype="text/plain",
                        headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS), "Cache-Control": "no-store"})
    valid = (session_check(current_app._get_current_object(), user.id, session.get("generation"))  # type: ignore[attr-defined]
             if user is not None else always)
    stream = EventStream(hub, inbox, request.environ.get("gunicorn.socket"), valid)
    return Response(stream, mimetype="text/event-stream", headers=SSE_HEADERS)


def session_check(app: Flask, user_id: int, generation: Any) -> Callable[[], bool]:
    """Whether the stream's session still stands, as load_session_user judges a request: the user exists,
    is active and the session's generation is current (read in an app context of its own: the stream runs
    after its request ended). A database that cannot answer ends the stream (the browser reconnects)."""

    def still_valid() -> bool:
        with app.app_context():
            try:
                user = db.session.get(User, user_id)
                return user is not None and user.active and user.session_generation == generation
            except Exception as error:  # noqa: BLE001 - a stream is not kept on an unchecked session
                log.warning("Live stream: could not re-check the session (%s); ending the stream", error)
                return False
            finally:
                db.session.remove()

    return still_valid
