"""The admin's list filters and page numbers, read from a query string with the shared parser.

The lists are lenient where the API is strict: an unknown status, type or yes/no is ignored (an old
bookmark still shows the list), while a page, task id or time that does not parse -- or that no
column can hold -- is a 400 naming the argument, as in the API (webapp.arguments.QueryArgs).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

from chime.models import ScheduleType, Status, Trigger
from chime.triggers import ScheduleError, validate_timezone
from chime.validation import MAX_ID
from webapp.arguments import QueryArgs
from webapp.queries import MAX_SEARCH_LENGTH_CHARS, ExecutionFilters, TaskFilters

SCHEDULE_TYPES = tuple(t.value for t in ScheduleType)
STATUSES = tuple(s.value for s in Status)
TRIGGERS = tuple(t.value for t in Trigger)
MAX_PAGE = 10**9
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def page_arg(args: MultiDict) -> int:
    """The page number of a list (1 when absent); ValidationError (400) when it is no page number."""
    return QueryArgs(args, strict=False).integer("page", 1, 1, MAX_PAGE) or 1


def task_filters(args: MultiDict) -> TaskFilters:
    """The task list filters of a query string; unknown values are ignored."""
    read = QueryArgs(args, strict=False)
    return TaskFilters(
        search=read.text("q", MAX_SEARCH_LENGTH_CHARS),
        status=read.choice("status", STATUSES),
        schedule_type=read.choice("type", SCHEDULE_TYPES),
        enabled=read.boolean("enabled"),
    )


def execution_filters(args: MultiDict, now: datetime) -> ExecutionFilters:
    """The log filters of a query string; `since`/`until` are wall-clock times in `tz`.

    Unknown choices are ignored; a task id or a time that does not parse (or that no
    column can hold: year 0, month 13) raises ValidationError, a 400 naming the argument.
    """
    read = QueryArgs(args, strict=False)
    zone = _zone(read.raw("tz") or "UTC")
    since = read.instant("since", zone)
    if since is None and args.get("range") in RANGES:
        since = now - RANGES[args["range"]]
    return ExecutionFilters(
        search=read.text("q", MAX_SEARCH_LENGTH_CHARS),
        task_id=read.integer("task", None, 1, MAX_ID),
        status=read.choice("status", STATUSES),
        trigger=read.choice("trigger", TRIGGERS),
        since=since,
        until=read.instant("until", zone),
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return validate_timezone(name)
    except ScheduleError:
        return ZoneInfo("UTC")
