"""Routes for notifications."""
from __future__ import annotations

from typing import Any

from flask import jsonify
from sqlalchemy import select, update

from webapp.api import bp
from webapp.api.common import bool_arg, paginate
from webapp.errors import NotFoundError
from webapp.extensions import db
from webapp.models import Notification, notification_to_dict


@bp.get("/notifications/")
def list_notifications() -> Any:
    query = select(Notification).order_by(Notification.id.desc())
    unread = bool_arg("unread")
    if unread is not None:
        query = query.where(Notification.read.is_(not unread))
    return jsonify(paginate(query, notification_to_dict))


@bp.post("/notifications/<int:notification_id>/read/")
def read_notification(notification_id: int) -> Any:
    notification = db.session.get(Notification, notification_id)
    if notification is None:
        raise NotFoundError("notification", notification_id)
    notification.read = True
    db.session.commit()
    return jsonify(notification_to_dict(notification))


@bp.post("/notifications/read-all/")
def read_all_notifications() -> Any:
    result = db.session.execute(update(Notification).where(Notification.read.is_(False)).values(read=True))
    db.session.commit()
    return jsonify({"marked_read": result.rowcount})
