"""Read-only queries for the API and the admin: the one paginator, the one task search, lists with
filters, chart data.

Nothing here writes: every change goes through :mod:`chime.services`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, collate, func, or_, select, text
from sqlalchemy.orm import selectinload

from chime.database import READ_ONLY_OPTION, UNICODE_LOWER_FUNCTION
from chime.extensions import db
from chime.models import Execution, Notification, Status, Task, task_dependencies
from chime.timeutil import as_utc, utcnow

DEFAULT_PER_PAGE = 25
MAX_SEARCH_LENGTH_CHARS = 200  # a longer search text is cut
EXPORT_BATCH_ROWS = 1000  # rows an export reads per query (and holds at once)
MAX_GRAPH_NODES = 1000  # tasks the dependency graph shows at most
MAX_TASK_CHOICES = 500  # tasks the log's task filter lists at most (and the selected one)
ICU_COLLATION = "und-x-icu"  # Postgres' Unicode root collation: lower() by Unicode's rules, whatever the locale
HOURS_IN_CHART = 24
CHART_OUTCOMES = (Status.SUCCESS, Status.FAILED, Status.RETRYING, Status.SKIPPED, Status.CANCELLED)


COUNT_LIMIT_OPTION = "chime_count_limit"  # a query's execution option: count its rows up to this many
IDS_FIRST_OPTION = "chime_ids_first"  # a query's execution option: page by this id column first (ids_first)
PAGE_IDS_OPTION = "chime_page_ids"  # with IDS_FIRST_OPTION: the query that reads a page's ids, when not the query's own
LOG_COUNT_LIMIT = 10_000  # the log and the notifications count this many matching rows at most
LOG_SEARCH_WINDOW_ROWS = 20_000  # a log search reads the newest this many rows of the other filters


@dataclass
class Page:
    """One page of a query's rows: `limit` rows from `offset`, of `total` (the API shows it as
    count/next/previous, the admin as numbered pages).

    `total` is exact unless the query was counted only up to a limit (COUNT_LIMIT_OPTION), more rows
    matched and this is not the last page: then `total_exact` is False and `total` is a lower bound
    (the limit, or the rows up to the end of this page and one more). `more` says whether rows follow.
    """

    items: list[Any]
    total: int
    offset: int
    limit: int
    total_exact: bool = True
    more: bool | None = None

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
        if self.more is not None:
            return self.more
        return self.offset + self.limit < self.total

    @property
    def first_index(self) -> int:
        return self.offset + 1 if self.items else 0

    @property
    def last_index(self) -> int:
        return self.offset + len(self.items) if not self.total_exact else min(self.offset + self.limit, self.total)


def counted_up_to(query: Select, count_limit: int) -> Select:
    """`query`, to be counted by `paginate` only up to `count_limit` rows (a count of ten million
    rows reads ten million index entries; one that stops at 10,000 costs a page's time)."""
    return query.execution_options(**{COUNT_LIMIT_OPTION: count_limit})


def count_rows(query: Select) -> tuple[int, bool]:
    """(rows of `query`, exact?): exact unless the query has a count limit and more rows match."""
    count_limit = query.get_execution_options().get(COUNT_LIMIT_OPTION)
    unordered = query.order_by(None)
    if count_limit is None:
        return db.session.scalar(select(func.count()).select_from(unordered.subquery())) or 0, True
    id_column = query.get_execution_options().get(IDS_FIRST_OPTION)
    if id_column is not None:  # only the ids: an index can answer without reading the rows
        unordered = unordered.with_only_columns(id_column)
    counted = db.session.scalar(select(func.count()).select_from(unordered.limit(count_limit + 1).subquery())) or 0
    return (counted, True) if counted <= count_limit else (count_limit, False)


def paginate(query: Select, *, offset: int, limit: int, past_end_shows_last: bool = False) -> Page:
    """Count `query`'s rows and run it for `limit` rows from `offset`: the one paginator.

    With `past_end_shows_last` (the admin's numbered pages) an offset past the end shows the last page
    (when the count is exact). A query counted up to a limit (`counted_up_to`) reads one row more than
    the page to know whether another page follows.
    """
    total, exact = count_rows(query)
    if exact:
        if past_end_shows_last:
            offset = min(offset, (math.ceil(total / limit) - 1) * limit if total else 0)
        items = list(db.session.scalars(_rows(query, limit, offset)).all())
        return Page(items=items, total=total, offset=offset, limit=limit)
    rows = list(db.session.scalars(_rows(query, limit + 1, offset)).all())
    more = len(rows) > limit
    items = rows[:limit]
    if items and not more:  # the last page: the rows before it and its own are all there are
        return Page(items=items, total=offset + len(items), offset=offset, limit=limit, more=False)
    total = max(total, offset + len(items) + (1 if more else 0))
    return Page(items=items, total=total, offset=offset, limit=limit, total_exact=False, more=more)


def ids_first(query: Select, id_column: Any, page_ids: Select | None = None) -> Select:
    """`query`, whose pages `paginate` finds by `id_column` alone before it reads their rows: the ids
    come from an index (the rows between two instants, by created_at) and are put in order there, so
    only a page of rows is ever read from the table, not every row the filters match. `page_ids`, the
    same ids in the same order, read another way, is what finds them instead when it is given."""
    return query.execution_options(**{IDS_FIRST_OPTION: id_column, PAGE_IDS_OPTION: page_ids})


def _rows(query: Select, limit: int, offset: int) -> Select:
    options = query.get_execution_options()
    id_column = options.get(IDS_FIRST_OPTION)
    if id_column is None:
        return query.limit(limit).offset(offset)
    page_ids = options.get(PAGE_IDS_OPTION)
    if page_ids is None:
        page_ids = query.with_only_columns(id_column)
    return query.where(id_column.in_(page_ids.limit(limit).offset(offset).scalar_subquery()))


def numbered_page(query: Select, page: int, per_page: int = DEFAULT_PER_PAGE) -> Page:
    """Page number `page` (1-based) of `query`; a page past the end shows the last one."""
    return paginate(query, offset=(max(1, page) - 1) * per_page, limit=per_page, past_end_shows_last=True)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def ignoring_ascii_case(column: Any, pattern: str) -> ColumnElement[bool]:
    """`column` ILIKE `pattern`, as SQLite's own LIKE where it can be: SQLite compiles ILIKE to
    lower(column) LIKE lower(pattern), and its lower() folds only the ASCII letters its LIKE already
    ignores the case of, so plain LIKE matches the same rows without two calls a row (3x faster)."""
    if db.engine.dialect.name == "sqlite":
        return column.like(pattern, escape="\\")
    return column.ilike(pattern, escape="\\")


_icu_by_database: dict[str, bool] = {}


def unicode_lower(column: Any) -> ColumnElement[str]:
    """`column` lower-cased by Unicode's rules (Python's str.lower) on SQLite and Postgres alike.

    SQLite's lower() folds ASCII only, so SQLite calls chime.database's function; Postgres'
    lower() follows the database's LC_CTYPE (the C locale folds ASCII only), so it reads the
    column in the ICU root collation when the server has ICU (standard builds do).
    """
    dialect = db.engine.dialect.name
    if dialect == "sqlite":
        return getattr(func, UNICODE_LOWER_FUNCTION)(column)
    if dialect == "postgresql" and _postgres_has_icu():
        return func.lower(collate(column, ICU_COLLATION))
    return func.lower(column)


def _postgres_has_icu() -> bool:
    key = str(db.engine.url)
    if key not in _icu_by_database:
        with db.engine.connect() as connection:  # its own: not the request's transaction (an export streams)
            found = connection.scalar(text("SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = :name)"),
                                      {"name": ICU_COLLATION})
        _icu_by_database[key] = bool(found)
    return _icu_by_database[key]


def contains_text(search: str, *columns: Any) -> ColumnElement[bool]:
    """Any of `columns` contains `search` as literal text (% and _ are no wildcards), ignoring case
    by Unicode's rules; `search` is cut to MAX_SEARCH_LENGTH_CHARS first."""
    pattern = _like_pattern(search[:MAX_SEARCH_LENGTH_CHARS].lower())
    if db.engine.dialect.name == "sqlite":
        return or_(*(_sqlite_contains(column, pattern) for column in columns))
    return or_(*(unicode_lower(column).like(pattern, escape="\\") for column in columns))


def _sqlite_contains(column: Any, pattern: str) -> ColumnElement[bool]:
    """unicode_lower(column) LIKE pattern (a lower-case pattern), at the speed of SQLite's own LIKE.

    SQLite's LIKE already ignores the case of ASCII letters, so on a value of printable ASCII alone it
    answers exactly what the Unicode lower-casing would, and whatever it matches elsewhere the
    lower-casing matches too; only a value with another character (GLOB '*[^ -~]*') needs the Python
    function, which costs some microseconds a row where LIKE costs a fraction of one.
    """
    return or_(column.like(pattern, escape="\\"),
               column.op("GLOB")("*[^ -~]*") & unicode_lower(column).like(pattern, escape="\\"))


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
    query = select(Task).order_by(*order_by).options(selectinload(Task.parents))  # depends_on: one query a page
    if filters.search:
        pattern = _like_pattern(filters.search[:MAX_SEARCH_LENGTH_CHARS])
        query = query.where(ignoring_ascii_case(Task.name, pattern) | ignoring_ascii_case(Task.job, pattern))
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


def log_task_choices(selected_id: int | None, limit: int | None = None) -> tuple[list[tuple[int, str]], bool]:
    """(id, name) of the first `limit` tasks by name for the log's task filter, and the selected task
    wherever it sorts; True when tasks were left out (a select of 100,000 names is megabytes of page)."""
    limit = limit or MAX_TASK_CHOICES
    query = select(Task.id, Task.name).order_by(func.lower(Task.name), Task.id).limit(limit + 1)
    choices = [(row.id, row.name) for row in db.session.execute(query).all()]
    truncated = len(choices) > limit
    choices = choices[:limit]
    if selected_id is not None and all(task_id != selected_id for task_id, _ in choices):
        choices += [(row.id, row.name) for row in db.session.execute(
            select(Task.id, Task.name).where(Task.id == selected_id)).all()]
    return choices, truncated


@dataclass
class TaskGraph:
    """Tasks and their dependencies: `nodes` (rows with id, name, enabled, last_status, last_run_at),
    at most `limit` of the `total` tasks asked for, by id; `edges` (parent id, child id) between
    two of the nodes; `isolated` counts the tasks with neither parents nor children."""

    nodes: list[Row]
    edges: list[tuple[int, int]]
    total: int
    isolated: int
    limit: int

    @property
    def truncated(self) -> bool:
        return len(self.nodes) < self.total


def task_graph(include_isolated: bool = False, limit: int = MAX_GRAPH_NODES) -> TaskGraph:
    """The dependency graph: the tasks that have a parent or a child (every task with
    `include_isolated`), the first `limit` by id, and the dependencies among them."""
    linked = select(task_dependencies.c.task_id).union(select(task_dependencies.c.parent_id))
    is_linked = Task.id.in_(linked.scalar_subquery())
    isolated = db.session.scalar(select(func.count()).select_from(Task).where(~is_linked)) or 0
    chosen = select(Task.id) if include_isolated else select(Task.id).where(is_linked)
    total = db.session.scalar(select(func.count()).select_from(chosen.subquery())) or 0
    node_ids = chosen.order_by(Task.id).limit(limit).scalar_subquery()
    nodes = db.session.execute(select(Task.id, Task.name, Task.enabled, Task.last_status, Task.last_run_at)
                               .where(Task.id.in_(node_ids)).order_by(Task.id)).all()
    edge_rows = db.session.execute(
        select(task_dependencies.c.parent_id, task_dependencies.c.task_id)
        .where(task_dependencies.c.task_id.in_(node_ids), task_dependencies.c.parent_id.in_(node_ids))
        .order_by(task_dependencies.c.task_id, task_dependencies.c.parent_id)).all()
    return TaskGraph(nodes=list(nodes), edges=[(row[0], row[1]) for row in edge_rows], total=total,
                     isolated=isolated, limit=limit)


def task_execution_page(task_id: int, page: int = 1, per_page: int = 20) -> Page:
    """The run history of one task, newest first (counted up to LOG_COUNT_LIMIT)."""
    query = ids_first(counted_up_to(select(Execution).where(Execution.task_id == task_id)
                                    .order_by(Execution.id.desc()), LOG_COUNT_LIMIT), Execution.id)
    return numbered_page(query, page, per_page)


# --------------------------------------------------------------------------- executions


@dataclass
class ExecutionFilters:
    search: str = ""  # literal text in the message or the task's name, any case
    task_id: int | None = None
    status: str | None = None
    trigger: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def execution_page(filters: ExecutionFilters, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Page:
    """Execution-log entries matching the filters, newest first."""
    return numbered_page(execution_query(filters), page, per_page)


def execution_query(filters: ExecutionFilters) -> Select:
    """The execution-log list for the filters, newest first (the API and the admin share it), counted
    up to LOG_COUNT_LIMIT rows. A search reads only the newest LOG_SEARCH_WINDOW_ROWS rows that match
    the other filters (`search_window`): narrow those (task, status, since/until) to search further back.
    """
    conditions = execution_conditions(replace(filters, search=""))
    if filters.search:
        conditions += [search_window(conditions), contains_text(filters.search, Execution.message, Execution.task_name)]
    query = select(Execution).where(*conditions).order_by(Execution.id.desc())
    return ids_first(counted_up_to(query, LOG_COUNT_LIMIT), Execution.id, _period_page_ids(filters, conditions))


PERIOD_PLAN_ROWS = 20_000  # runs counted at most, in and after a period, to choose how its page is found


def _period_page_ids(filters: ExecutionFilters, conditions: list[ColumnElement[bool]]) -> Select | None:
    """How a page of a period that ends (`until`) finds its ids, newest first, when the database's own plan
    would read far more: the period's ids, sorted (`sorts_the_period`; OFFSET 0 keeps Postgres from walking
    the id index instead). None: the database's plan. Postgres only: SQLite's planner reads a period from
    its created_at index by itself."""
    if db.engine.dialect.name != "postgresql" or not sorts_the_period(filters):
        return None
    matching = select(Execution.id).where(*conditions).offset(0).subquery()
    return select(matching.c.id).order_by(matching.c.id.desc())


def sorts_the_period(filters: ExecutionFilters, now: datetime | None = None) -> bool:
    """For a period that ends (`until`), no search: are there fewer runs in it than after it? Newest first,
    a page is either the id index walked from the newest run, skipping every run after the period (cheap
    when they are few), or the period's ids read from the created_at index and sorted (cheap when it is
    short). Postgres' planner takes ids and creation times for unrelated and walks (228 ms for a day a week
    ago in a 10M-row log; 52 ms sorted). The runs are counted by time alone, from the created_at index
    (bounded whatever the other filters), up to PERIOD_PLAN_ROWS; past that on both sides the lengths of
    time decide, as if runs were evenly spread (a short burst far back may then be sorted where the walk
    was cheaper: bounded by the period's runs; counting further would cost every such page ~20 ms).
    Either way the page is the same."""
    if filters.until is None or filters.search:
        return False
    if _count_up_to(execution_conditions(ExecutionFilters(since=filters.since, until=filters.until)),
                    PERIOD_PLAN_ROWS) < PERIOD_PLAN_ROWS:
        return True
    if _count_up_to([Execution.created_at >= filters.until], PERIOD_PLAN_ROWS) < PERIOD_PLAN_ROWS:
        return False
    start = filters.since or db.session.scalar(select(func.min(Execution.created_at)))
    now = now or utcnow()
    return start is not None and as_utc(filters.until) - as_utc(start) < as_utc(now) - as_utc(filters.until)


def _count_up_to(conditions: list[ColumnElement[bool]], rows: int) -> int:
    matching = select(Execution.id).where(*conditions).limit(rows).subquery()
    return db.session.scalar(select(func.count()).select_from(matching)) or 0


def search_window(conditions: list[ColumnElement[bool]], rows: int | None = None) -> ColumnElement[bool]:
    """Only the newest `rows` executions that meet `conditions`: id at least the `rows`-th newest one's
    (all of them when fewer match). Text search reads every row it is given (no index answers "contains"),
    so this bounds its cost whatever the size of the log.

    The bound is read here, one indexed query, and the search's queries get it as a number: as a
    subquery Postgres could not tell how many rows it leaves, planned for all ten million and paid for
    JIT compilation and parallel workers on every search (44 ms where the scan takes 15; BENCHMARKS §13).
    """
    rows = rows or LOG_SEARCH_WINDOW_ROWS
    nth_newest = db.session.scalar(select(Execution.id).where(*conditions).order_by(Execution.id.desc())
                                   .limit(1).offset(rows - 1))
    return Execution.id >= (nth_newest or 0)


def execution_conditions(filters: ExecutionFilters) -> list[ColumnElement[bool]]:
    """The WHERE conditions of the log filters."""
    conditions = []
    if filters.search:
        conditions.append(contains_text(filters.search, Execution.message, Execution.task_name))
    if filters.task_id is not None:
        conditions.append(Execution.task_id == filters.task_id)
    if filters.status:
        conditions.append(Execution.status == filters.status)
    if filters.trigger:
        conditions.append(Execution.trigger == filters.trigger)
    if filters.since is not None:
        conditions.append(Execution.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(Execution.created_at < filters.until)
    return conditions


def execution_batches(filters: ExecutionFilters, batch_rows: int = EXPORT_BATCH_ROWS) -> Iterator[list[Row]]:
    """The filtered log, newest first, as lists of at most `batch_rows` rows (the export).

    Each batch is one query keyed by id (`id < the last one sent`, not OFFSET, so every query is
    as cheap as the first) in a short read-only transaction of its own: a million rows never sit in
    memory at once, and no lock or snapshot is held while the client reads. A row deleted by
    retention before its batch is read is left out; rows added meanwhile are newer and never in it.
    """
    conditions = execution_conditions(filters)
    before_id: int | None = None
    while True:
        query = select(Execution.__table__).where(*conditions).order_by(Execution.id.desc()).limit(batch_rows)
        if before_id is not None:
            query = query.where(Execution.id < before_id)
        with db.engine.connect().execution_options(**{READ_ONLY_OPTION: True}) as connection:
            rows = connection.execute(query).all()
        if rows:
            yield rows
        if len(rows) < batch_rows:
            return
        before_id = rows[-1].id


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
    starts = [current_hour - timedelta(hours=hours - 1 - i) for i in range(hours)]
    buckets = [HourBucket(start=start) for start in starts]
    for (index, status), count in _counts_by_hour_and_status(starts).items():
        if count:
            outcome = status if status in CHART_OUTCOMES else "OTHER"
            counts = buckets[index].counts
            counts[outcome] = counts.get(outcome, 0) + count
    return buckets


def _counts_by_hour_and_status(starts: list[datetime]) -> dict[tuple[int, str], int]:
    """{(hour index, status): runs created in [starts[i], starts[i] + 1 h) with that status}.

    One statement of range counts, one per hour and status, each answered from the index on
    (status, created_at) without reading a row: a day of a busy log (333,000 runs) costs tens of
    milliseconds, where grouping the rows by a computed hour read every one of them (BENCHMARKS §13).
    """
    keys = [(index, status.value) for index in range(len(starts)) for status in Status]
    counts = [
        select(func.count()).select_from(Execution).where(
            Execution.status == status, Execution.created_at >= starts[index],
            Execution.created_at < starts[index] + timedelta(hours=1),
        ).scalar_subquery()
        for index, status in keys
    ]
    row = db.session.execute(select(*counts)).one()
    return dict(zip(keys, row))


# --------------------------------------------------------------------------- notifications


def unread_notifications() -> tuple[int, int]:
    """(number of unread notifications, id of the newest one or 0)."""
    row = db.session.execute(
        select(func.count(), func.max(Notification.id)).where(Notification.read.is_(False))).one()
    return int(row[0] or 0), int(row[1] or 0)


def notification_query(read: bool | None = None) -> Select:
    """Notifications, newest first (only the read or unread ones when `read` says), counted up to LOG_COUNT_LIMIT."""
    query = select(Notification).order_by(Notification.id.desc())
    if read is not None:
        query = query.where(Notification.read.is_(read))
    return ids_first(counted_up_to(query, LOG_COUNT_LIMIT), Notification.id)


def notification_page(unread_only: bool = False, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Page:
    return numbered_page(notification_query(False if unread_only else None), page, per_page)


def task_names(task_ids: set[int]) -> dict[int, str]:
    """Names of the given tasks (those that still exist)."""
    if not task_ids:
        return {}
    rows = db.session.execute(select(Task.id, Task.name).where(Task.id.in_(task_ids))).all()
    return {row.id: row.name for row in rows}
