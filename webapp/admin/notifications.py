"""Admin pages for notifications: the list, mark one read, mark all read."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from chime import services
from webapp import queries
from webapp.admin.filters import page_arg
from chime.enums import Role
from webapp.admin.blueprint import bp
from webapp.admin.views import safe_next
from webapp.auth import allow
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work


@bp.get("/notifications")
@allow(Role.VIEWER)
def notification_list() -> Any:
    unread_only = request.args.get("show") == "unread"
    page = queries.notification_page(unread_only, page_arg(request.args))
    names = queries.task_names({n.task_id for n in page.items if n.task_id is not None})
    return render_template("notifications.html", page=page, unread_only=unread_only,
                           task_names=names, now=utcnow())


@bp.post("/notifications/<int:notification_id>/read")
@allow(Role.VIEWER)
def notification_read(notification_id: int) -> Any:
    with unit_of_work():
        services.mark_notification_read(notification_id)
    return redirect(safe_next(request.form.get("next"), url_for("admin.notification_list")))


@bp.post("/notifications/read-all")
@allow(Role.VIEWER)
def notification_read_all() -> Any:
    with unit_of_work():
        count = services.mark_all_notifications_read()
    flash(f"Marked {count} notification{'s' if count != 1 else ''} read.", "success")
    return redirect(safe_next(request.form.get("next"), url_for("admin.notification_list")))
