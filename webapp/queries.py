"""Read-only queries for the API and the admin: the one paginator, the one task search, lists with
filters, chart data.

Nothing here writes: every change goes through :mod:`chime.services`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select

from chime.extensions import db
from chime.models import Execution, Notification, Status, Task
from chime.timeutil import as_utc, utcnow

DEFAULT_PER_PAGE = 25
MAX_SEARCH_LENGTH_CHARS = 200  # a longer search text is cut
HOURS_IN_CHART = 24
CHART_OUTCOMES = (Status.SUCCESS, Status.FAILED, Status.RETRYING, Status.SKIPPED, Status.CANCELLED)


@dataclass
class Page:
    """One page of a query's rows: `limit` rows from `offset`, of `total` (the API shows it as
    count/next/previous, the admin as numbered pages)."""

    items: list[Any]
    total: int
    offset: int
    limit: int

    @property
    def per_page(self) -> int:
        return self.limit

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.limit))

    @property
    def has_prev(self) -> bool:
        return self.offset > 0

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < self.total

    @property
    def first_index(self) -> int:
        return self.offset + 1 if self.items else 0

    @property
    def last_index(self) -> int:
        return min(self.offset + self.limit, self.total)


def paginate(query: Select, *, offset: int, limit: int, past_end_shows_last: bool = False) -> Page:
    """Count `query`'s rows and run it for `limit` rows from `offset`: the one paginator.

    With `past_end_shows_last` (the admin's numbered pages) an offset past the end shows the last page.
    """
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    if past_end_shows_last:
        offset = min(offset, (math.ceil(total / limit) - 1) * limit if total else 0)
    items = list(db.session.scalars(query.limit(limit).offset(offset)).all())
    return Page(items=items, total=total, offset=offset, limit=limit)


def numbered_page(query: Select, page: int, per_page: int = DEFAULT_PER_PAGE) -> Page:
    """Page number `page` (1-based) of `query`; a page past the end shows the last one."""
    return paginate(query, offset=(max(1, page) - 1) * per_page, limit=per_page, past_end_shows_last=True)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --------------------------------------------------------------------------- tasks


@dataclass
class TaskFilters:
    search: str = ""
    status: str | None = None
    schedule_type: str | None = None
    enabled: bool | None = None


TASKS_BY_ID = (Task.id,)  # the API's order
TASKS_BY_NAME = (func.lower(Task.name), Task.id)  # the admin's order


def task_query(filters: TaskFilters, order_by: Sequence[Any]) -> Select:
    """Tasks matching the list filters, in the caller's order: the one task search of the API and the
    admin. `search` is a case-insensitive literal substring of the task's name or its job's name."""
    query = select(Task).order_by(*order_by)
    if filters.search:
        pattern = _like_pattern(filters.search[:MAX_SEARCH_LENGTH_CHARS])
        query = query.where(Task.name.ilike(pattern, escape="\\") | Task.job.ilike(pattern, escape="\\"))
    if filters.status:
        query = query.where(Task.status == filters.status)
    if filters.schedule_type:
        query = query.where(Task.schedule_type == filters.schedule_type)
    if filters.enabled is not None:
        query = query.where(Task.enabled.is_(filters.enabled))
    return query


def task_page(filters: TaskFilters, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Page:
    """The admin's task list: tasks matching the filters, by name."""
    return numbered_page(task_query(filters, TASKS_BY_NAME), page, per_page)


def task_choices(exclude_id: int | None = None) -> list[tuple[int, str]]:
    """(id, name) of every task, for the depends_on and log filter selects."""
    query = select(Task.id, Task.name).order_by(func.lower(Task.name), Task.id)
    if exclude_id is not None:
        query = query.where(Task.id != exclude_id)
    return [(row.id, row.name) for row in db.session.execute(query).all()]


def task_execution_page(task_id: int, page: int = 1, per_page: int = 20) -> Page:
    """The run history of one task, newest first."""
    query = select(Execution).where(Execution.task_id == task_id).order_by(Execution.id.desc())
    return numbered_page(query, page, per_page)


# --------------------------------------------------------------------------- executions


@dataclass
class ExecutionFilters:
    task_id: int | None = None
    status: str | None = None
    trigger: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def execution_page(filters: ExecutionFilters, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Page:
    """Execution-log entries matching the filters, newest first."""
    return numbered_page(execution_query(filters), page, per_page)


def execution_query(filters: ExecutionFilters) -> Select:
    """The execution-log query for the filters, newest first (the API and the admin share it)."""
    query = select(Execution).order_by(Execution.id.desc())
    if filters.task_id is not None:
        query = query.where(Execution.task_id == filters.task_id)
    if filters.status:
        query = query.where(Execution.status == filters.status)
    if filters.trigger:
        query = query.where(Execution.trigger == filters.trigger)
    if filters.since is not None:
        query = query.where(Execution.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(Execution.created_at < filters.until)
    return query


def latest_failures(limit: int = 5) -> list[Execution]:
    """The most recent FAILED executions."""
    query = select(Execution).where(Execution.status == Status.FAILED.value).order_by(Execution.id.desc())
    return list(db.session.scalars(query.limit(limit)).all())


@dataclass
class HourBucket:
    start: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def hourly_outcomes(now: datetime | None = None, hours: int = HOURS_IN_CHART) -> list[HourBucket]:
    """Executions per hour by outcome for the last `hours` hours (oldest first).

    Buckets are whole UTC hours; the last one is the current, partial hour.
    """
    now = as_utc(now or utcnow())
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    first_hour = current_hour - timedelta(hours=hours - 1)
    buckets = [HourBucket(start=first_hour + timedelta(hours=i)) for i in range(hours)]
    for hour_start, status, count in _counts_by_hour(first_hour):
        index = int((hour_start - first_hour).total_seconds() // 3600)
        if 0 <= index < hours:
            outcome = status if status in CHART_OUTCOMES else "OTHER"
            counts = buckets[index].counts
            counts[outcome] = counts.get(outcome, 0) + count
    return buckets


def _counts_by_hour(since: datetime) -> list[tuple[datetime, str, int]]:
    """(hour start, status, count) rows for executions created since `since`."""
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        hour = func.date_trunc("hour", func.timezone("UTC", Execution.created_at))
    elif dialect == "sqlite":
        hour = func.strftime("%Y-%m-%d %H:00:00", Execution.created_at)
    else:  # any other database: bucket in Python
        rows = db.session.execute(
            select(Execution.created_at, Execution.status).where(Execution.created_at >= since)).all()
        return [(as_utc(r.created_at).replace(minute=0, second=0, microsecond=0), r.status, 1) for r in rows]
    query = (select(hour.label("hour"), Execution.status, func.count())
             .where(Execution.created_at >= since).group_by(hour, Execution.status))
    result = []
    for hour_value, status, count in db.session.execute(query).all():
        if isinstance(hour_value, str):
            hour_value = datetime.fromisoformat(hour_value)
        result.append((as_utc(hour_value), status, count))
    return result


# --------------------------------------------------------------------------- notifications


def unread_notifications() -> tuple[int, int]:
    """(number of unread notifications, id of the newest one or 0)."""
    row = db.session.execute(
        select(func.count(), func.max(Notification.id)).where(Notification.read.is_(False))).one()
    return int(row[0] or 0), int(row[1] or 0)


def notification_page(unread_only: bool = False, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Page:
    query = select(Notification).order_by(Notification.id.desc())
    if unread_only:
        query = query.where(Notification.read.is_(False))
    return numbered_page(query, page, per_page)


def task_names(task_ids: set[int]) -> dict[int, str]:
    """Names of the given tasks (those that still exist)."""
    if not task_ids:
        return {}
    rows = db.session.execute(select(Task.id, Task.name).where(Task.id.in_(task_ids))).all()
    return {row.id: row.name for row in rows}
