"""The audit trail's search arguments, read from a query string for the API and the admin alike.

A malformed value is a ValidationError naming the argument (a 400), as with the other lists
(webapp.arguments.QueryArgs): an instant that does not parse or text with a NUL character on both
surfaces; an unknown object type, source or action shape in the API (the admin, lenient, ignores it).
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from chime.audit import ACTION_PATTERN, MAX_FILTER_TEXT_CHARS, OBJECT_TYPES, AuditFilters
from chime.enums import Source
from chime.errors import ValidationError
from webapp.arguments import QueryArgs

SOURCES = tuple(source.value for source in Source)
MAX_OBJECT_ID_CHARS = 64  # what audit_events.object_id holds


def audit_filters(args: QueryArgs, zone: ZoneInfo | None = None) -> AuditFilters:
    """The filters of a query string: object_type, object_id, actor, action, source, since, until, search.

    `since`/`until` without an offset are read in `zone` (UTC by default).
    """
    object_id = args.text("object_id", MAX_FILTER_TEXT_CHARS)
    if len(object_id) > MAX_OBJECT_ID_CHARS:
        raise ValidationError({"object_id": f"must be at most {MAX_OBJECT_ID_CHARS} characters"})
    return AuditFilters(
        object_type=_one_of(args, "object_type", OBJECT_TYPES),
        object_id=object_id or None,
        actor=args.text("actor", MAX_FILTER_TEXT_CHARS),
        action=_action(args),
        source=_one_of(args, "source", SOURCES),
        since=args.instant("since", zone),
        until=args.instant("until", zone),
        search=args.text("search", MAX_FILTER_TEXT_CHARS),
    )


def _one_of(args: QueryArgs, name: str, options: tuple[str, ...]) -> str | None:
    value = args.raw(name).lower()
    if not value:
        return None
    if value not in options:
        if not args.strict:
            return None  # the admin's lists ignore an unknown choice (an old bookmark still shows the list)
        raise ValidationError({name: "must be one of " + ", ".join(options)})
    return value


def _action(args: QueryArgs) -> str | None:
    value = args.raw("action").lower()
    if not value:
        return None
    if not ACTION_PATTERN.fullmatch(value):
        if not args.strict:
            return None
        raise ValidationError({"action": "must be an action name such as create, update or run_now "
                                         "(lower-case letters and _, at most 40)"})
    return value
