"""The audit trail: who changed what, when, from where -- and for edits the fields before and after.

Whoever acts is an :class:`Actor`. The edges say who it is for the work they run (the web app for a
request, the CLI for a command) with :func:`acting_as`; the use-cases in chime.services call
:func:`record`, which adds one AuditEvent to the caller's transaction (so a change that rolls back
leaves no audit row, and a kept change always has one). Nothing is recorded for the engine's own
bookkeeping (status, next run time).
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, String, cast, select

from chime.enums import Role, Source
from chime.extensions import db
from chime.models import AuditEvent, Execution

MASK = "********"
# A field whose name contains one of these (in any case, at any depth: a header of an http_request's
# args too) is a secret: its value never reaches the audit trail.
SECRET_MARKERS = ("password", "passwd", "secret", "token", "api_key", "api-key", "apikey", "authorization",
                  "cookie", "credential", "private_key", "private-key", "signature")
# The password of a URL's user info (https://user:pw@host): masked inside any text value.
URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:)[^/?#@\s]+(?P<at>@)")
# A URL's query parameter whose name looks secret (?token=..., &api_key=...): its value is masked too.
URL_SECRET_PARAMETER = re.compile(r"(?P<head>[?&][^=&#\s]*(?:" + "|".join(map(re.escape, SECRET_MARKERS))
                                  + r"|key)[^=&#\s]*=)[^&#\s]+", re.IGNORECASE)
OBJECT_TYPES = ("task", "execution", "user", "token", "channel")
ACTION_PATTERN = re.compile(r"[a-z][a-z_]{0,39}")  # create, update, run_now, bulk_enable...
MAX_FILTER_TEXT_CHARS = 200


@dataclass(frozen=True)
class Actor:
    """Who acts: a user (through the admin, or one of their API tokens), the CLI or the engine."""

    name: str
    source: Source
    role: Role
    user_id: int | None = None
    token_id: int | None = None
    remote_addr: str | None = None

    @property
    def label(self) -> str:
        """How the trail names it: the user, and the token it used when it used one."""
        return self.name


ENGINE = Actor(name="chime", source=Source.ENGINE, role=Role.ADMIN)
CURRENT_ACTOR: ContextVar[Actor] = ContextVar("chime.audit.actor", default=ENGINE)


def current_actor() -> Actor:
    """Who is acting in this context (the engine unless an edge said otherwise)."""
    return CURRENT_ACTOR.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Run the block as `actor`: every change it records names them."""
    reset = CURRENT_ACTOR.set(actor)
    try:
        yield actor
    finally:
        CURRENT_ACTOR.reset(reset)


def is_secret(field: str) -> bool:
    lowered = field.lower()
    return any(marker in lowered for marker in SECRET_MARKERS)


def masked(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A copy of `values` with every secret field (at any depth) replaced by MASK."""
    if values is None:
        return None
    return {key: (MASK if is_secret(str(key)) and value not in (None, "") else _masked_value(value))
            for key, value in values.items()}


def _masked_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return masked(value)
    if isinstance(value, (list, tuple)):
        return [_masked_value(item) for item in value]
    if isinstance(value, str) and "://" in value:
        value = URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["at"], value)
        return URL_SECRET_PARAMETER.sub(lambda m: m["head"] + MASK, value)
    return value


def shown_args(args: Mapping[str, Any] | None, actor: Actor | None = None) -> dict[str, Any] | None:
    """A task's or run's arguments as `actor` (default: whoever acts now) may see them: whole for a role
    that may edit tasks, with secrets masked (headers such as Authorization, URL passwords) for the others."""
    if args is None:
        return None
    if (actor or current_actor()).role.includes(Role.ADMIN):
        return dict(args)
    return masked(args)


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields whose values differ, as (before, after) restricted to them."""
    keys = [key for key in {**before, **after} if before.get(key) != after.get(key)]
    return {key: before.get(key) for key in keys}, {key: after.get(key) for key in keys}


def record(action: str, object_type: str, object_id: object = None, object_name: str = "", *,
           before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None,
           details: Mapping[str, Any] | None = None, actor: Actor | None = None) -> AuditEvent:
    """Add one audit event to the current transaction (the caller's unit of work commits it)."""
    who = actor or current_actor()
    event = AuditEvent(
        actor_id=who.user_id, actor_name=who.label[:200], source=who.source, remote_addr=who.remote_addr,
        action=action, object_type=object_type, object_id=None if object_id is None else str(object_id),
        object_name=(object_name or "")[:200], before=masked(before), after=masked(after),
        details=masked(details),
    )
    db.session.add(event)
    return event


# --------------------------------------------------------------------------- reading the trail


@dataclass(frozen=True)
class AuditFilters:
    """What the API and the admin may search the trail by (None or "": no filter)."""

    object_type: str | None = None
    object_id: str | None = None
    actor: str = ""  # the actor's name contains this
    action: str | None = None
    source: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    search: str = ""  # the object's or the actor's name contains this
    task_id: int | None = None  # events about this task or one of its runs (retry, cancel, stop)


def _contains(text: str) -> str:
    cut = text[:MAX_FILTER_TEXT_CHARS]
    return "%" + cut.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def about_task(task_id: int) -> ColumnElement[bool]:
    """Events about a task: its own, and those about its runs (retried, cancelled, stopped)."""
    runs = select(cast(Execution.id, String)).where(Execution.task_id == task_id)
    return (((AuditEvent.object_type == "task") & (AuditEvent.object_id == str(task_id)))
            | ((AuditEvent.object_type == "execution") & AuditEvent.object_id.in_(runs)))


def audit_query(filters: AuditFilters) -> Select:
    """The audit events matching the filters, newest first: the one search of the API and the admin."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    if filters.task_id is not None:
        query = query.where(about_task(filters.task_id))
    if filters.object_type:
        query = query.where(AuditEvent.object_type == filters.object_type)
    if filters.object_id:
        query = query.where(AuditEvent.object_id == filters.object_id)
    if filters.actor:
        query = query.where(AuditEvent.actor_name.ilike(_contains(filters.actor), escape="\\"))
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.source:
        query = query.where(AuditEvent.source == filters.source)
    if filters.since is not None:
        query = query.where(AuditEvent.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.created_at < filters.until)
    if filters.search:
        pattern = _contains(filters.search)
        query = query.where(AuditEvent.object_name.ilike(pattern, escape="\\")
                            | AuditEvent.actor_name.ilike(pattern, escape="\\"))
    return query
