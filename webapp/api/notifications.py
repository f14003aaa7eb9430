"""Routes for notifications."""
from __future__ import annotations

from typing import Any

from flask import jsonify

from chime import services
from chime.enums import Role
from webapp import queries
from webapp.api.blueprint import bp
from webapp.auth import allow
from webapp.api.common import paginate, query_args
from chime.schemas.notification import NotificationRead, ReadAllResult
from chime.unit_of_work import unit_of_work


@bp.get("/notifications/")
@allow(Role.VIEWER)
def list_notifications() -> Any:
    unread = query_args().boolean("unread")
    query = queries.notification_query(None if unread is None else not unread)
    return jsonify(paginate(query, NotificationRead.dump))


@bp.post("/notifications/<int:notification_id>/read/")
@allow(Role.VIEWER)
def read_notification(notification_id: int) -> Any:
    with unit_of_work():
        notification = services.mark_notification_read(notification_id)
    return jsonify(NotificationRead.dump(notification))


@bp.post("/notifications/read-all/")
@allow(Role.VIEWER)
def read_all_notifications() -> Any:
    with unit_of_work():
        count = services.mark_all_notifications_read()
    return jsonify(ReadAllResult.of(marked_read=count))
