"""The audit trail: who changed what, when, from where -- and for edits the fields before and after.

Whoever acts is an :class:`Actor`. The edges say who it is for the work they run (the web app for a
request, the CLI for a command) with :func:`acting_as`; the use-cases in chime.services call
:func:`record`, which adds one AuditEvent to the caller's transaction (so a change that rolls back
leaves no audit row, and a kept change always has one). Nothing is recorded for the engine's own
bookkeeping (status, next run time).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from chime.enums import Role, Source
from chime.extensions import db
from chime.models import AuditEvent

MASK = "********"
# A field whose name contains one of these is a secret: its value never reaches the audit trail.
SECRET_MARKERS = ("password", "secret", "token", "api_key", "apikey", "authorization")


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
    if isinstance(value, list):
        return [_masked_value(item) for item in value]
    return value


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
