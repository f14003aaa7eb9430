"""Admin pages for the audit trail: the searchable list, and the change history a task's page shows."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask import render_template, request
from sqlalchemy import select

from chime.audit import OBJECT_TYPES, about_task, audit_query, masked
from chime.enums import Role, Source
from chime.extensions import db
from chime.models import AuditEvent
from chime.triggers import ScheduleError, validate_timezone
from webapp import queries
from webapp.admin.blueprint import bp
from webapp.admin.filters import page_arg
from webapp.arguments import QueryArgs
from webapp.audit_filters import audit_filters
from webapp.auth import allow

HISTORY_SHOWN = 20  # events on a task's page; the rest are a link away
VALUE_SHOWN_CHARS = 300
ACTIONS = ("create", "update", "delete", "enable", "disable", "pause", "resume", "run_now", "retry", "cancel",
           "stop", "clone", "role_change", "password_change", "token_create", "token_revoke", "activate",
           "deactivate")


@dataclass(frozen=True)
class Change:
    """One field of an event, before and after (None: the side has no value, as for a create or delete)."""

    field: str
    before: str | None
    after: str | None


@bp.get("/audit")
@allow(Role.VIEWER)
def audit_list() -> Any:
    read = QueryArgs(request.args, strict=False)
    filters = audit_filters(read, _zone(read.raw("tz") or "UTC"))
    page = queries.numbered_page(audit_query(filters), page_arg(request.args))
    return render_template("audit/list.html", page=page, filters=filters, object_types=OBJECT_TYPES,
                           sources=[source.value for source in Source],
                           actions=[(action, action.replace("_", " ").capitalize()) for action in ACTIONS])


def _zone(name: str) -> ZoneInfo:
    """The browser's zone the page's From/Until are written in (UTC when it is no zone)."""
    try:
        return validate_timezone(name)
    except ScheduleError:
        return ZoneInfo("UTC")


def audit_events_of(object_type: str, object_id: object, limit: int = HISTORY_SHOWN) -> list[AuditEvent]:
    """In templates: the latest events about one object, newest first (a task's change history)."""
    about = (about_task(int(object_id)) if object_type == "task"
             else (AuditEvent.object_type == object_type) & (AuditEvent.object_id == str(object_id)))
    query = select(AuditEvent).where(about).order_by(AuditEvent.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def audit_changes(event: AuditEvent) -> list[Change]:
    """In templates: an event's fields before and after, secrets masked, each value as short text.

    A create (after only) or a delete (before only) leaves out the fields that held nothing.
    """
    before, after = masked(event.before) or {}, masked(event.after) or {}
    if not before or not after:
        before, after = _filled(before), _filled(after)
    fields = list(dict.fromkeys([*before, *after]))
    return [Change(name, _shown(before, name), _shown(after, name)) for name in fields]


def _filled(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value not in (None, "", [], {})}


def _shown(values: dict[str, Any], name: str) -> str | None:
    if name not in values:
        return None
    value = values[name]
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= VALUE_SHOWN_CHARS else text[:VALUE_SHOWN_CHARS - 1] + "…"


def details_text(event: AuditEvent) -> str:
    """In templates: an event's details as `key: value` pairs, secrets masked."""
    details = masked(event.details) or {}
    return ", ".join(f"{key}: {_shown(details, key)}" for key in details)


bp.add_app_template_global(audit_events_of, "audit_events_of")
bp.add_app_template_global(audit_changes, "audit_changes")
bp.add_app_template_global(details_text, "audit_details")
