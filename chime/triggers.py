"""Compute when a schedule fires: pure schedule maths, no I/O and no clock.

Every instant going in or out is a timezone-aware datetime; results are UTC.
Cron expressions mean what cronie's crontab(5) says, evaluated on the local
wall clock of the schedule's time zone; the expression is read as cronie's
entry.c reads it and matched as its cron.c does (no croniter):

* Day of month and day of week are ORed only when neither field starts with
  '*'; when either does, a day must match both ('0 9 */1 * 1-5' is weekdays
  only, '0 0 1 * */1' is monthly).
* A job whose minute or hour field starts with '*' (a "wildcard" job, such as
  '*/15 * * * *', '0 * * * *' or '* 2 * * *') follows real time: a wall time
  that does not exist (spring forward) never fires, and one that occurs twice
  (fall back) fires at both instants.
* Any other ("fixed-time") job fires a skipped wall time once at the first
  instant after the gap, so no day is lost, and a repeated wall time once, at
  its first occurrence.

The mapping of wall-clock times onto real instants lives in
``_fire_instants_for_wall``.
"""
from __future__ import annotations

import functools
import heapq
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from itertools import islice
from zoneinfo import ZoneInfo

from cron_descriptor import CasingTypeEnum, ExpressionDescriptor, Options

from chime.enums import ScheduleType

ONE_TIME, CRON, INTERVAL = ScheduleType.ONE_TIME, ScheduleType.CRON, ScheduleType.INTERVAL
SCHEDULE_TYPES = frozenset(ScheduleType)

CRON_ALIASES = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"}
_ALIAS_EXPRESSIONS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

MAX_CRON_LENGTH_CHARS = 200
MAX_TIMEZONE_LENGTH_CHARS = 64
MAX_PREVIEW_COUNT = 50
MAX_INSTANT_LENGTH_CHARS = 64
DEFAULT_MISSED_LIMIT = 1000

_UTC = timezone.utc
_ONE_MICROSECOND = timedelta(microseconds=1)
_ONE_SECOND = timedelta(seconds=1)
_ONE_DAY = timedelta(days=1)
_MINUTES_PER_DAY = 24 * 60
# Slack added around the wall-clock search window; cron fires on whole minutes.
_SEARCH_SLACK = timedelta(minutes=1)
# How far ahead to look for a fall-back transition when choosing where to start.
_TRANSITION_LOOKAHEAD = timedelta(days=1)
# Running past the datetime range ends a search.
_END_OF_TIME_ERRORS = (OverflowError, ValueError)

_CRON_FIELD_SEPARATOR = re.compile(r"[ \t]+")
_CRON_ITEM = re.compile(
    r"(?P<start>\*|[0-9]+|[a-z]+)(?:-(?P<end>[0-9]+|[a-z]+))?(?:/(?P<step>[0-9]+))?",
    re.ASCII | re.IGNORECASE,
)
_TIMEZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*", re.ASCII)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February as in a leap year


class ScheduleError(ValueError):
    """A schedule or one of its parts is invalid; the message is a human sentence."""


@dataclass(frozen=True)
class Schedule:
    """Describe when a task fires; all datetimes are aware (UTC)."""

    schedule_type: str
    timezone: str = "UTC"
    run_at: datetime | None = None
    cron: str | None = None
    interval_seconds: int | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    anchor_at: datetime | None = None


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0

    def value(self, token: str) -> int:
        """Return the number a field token stands for, or raise ScheduleError."""
        if token.isdigit():
            number = int(token)
        elif token.lower() in self.names:
            number = self.names.index(token.lower()) + self.name_base
        else:
            raise ScheduleError(f"'{token}' is not a valid {self.name} value.")
        if not self.low <= number <= self.high:
            raise ScheduleError(
                f"The {self.name} value {number} is out of range {self.low}-{self.high}."
            )
        return number


_CRON_FIELDS = (
    _CronField("minute", 0, 59),
    _CronField("hour", 0, 23),
    _CronField("day-of-month", 1, 31),
    _CronField("month", 1, 12, _MONTH_NAMES, 1),
    _CronField("day-of-week", 0, 7, _DAY_NAMES, 0),
)


# --- validation --------------------------------------------------------------


def validate_cron(expr: str) -> None:
    """Raise ScheduleError unless expr is a 5-field cron expression or a CRON_ALIASES alias."""
    _normalize_cron(expr)


def validate_timezone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for an IANA time zone name or raise ScheduleError."""
    if not isinstance(name, str):
        raise ScheduleError("The time zone must be given as a name such as 'Europe/Berlin'.")
    if len(name) > MAX_TIMEZONE_LENGTH_CHARS or not _TIMEZONE_NAME.fullmatch(name):
        raise ScheduleError(f"Unknown time zone {_quote(name)}.")
    try:
        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError, OSError, corrupt files
        raise ScheduleError(f"Unknown time zone {_quote(name)}.") from exc


def validate_schedule(schedule: Schedule) -> None:
    """Raise ScheduleError unless the schedule is complete and consistent."""
    if schedule.schedule_type not in SCHEDULE_TYPES:
        raise ScheduleError(f"Unknown schedule type {_quote(str(schedule.schedule_type))}.")
    validate_timezone(schedule.timezone)
    for field_name in ("run_at", "start_at", "end_at", "anchor_at"):
        _require_aware_or_none(getattr(schedule, field_name), field_name)
    if schedule.start_at and schedule.end_at and schedule.end_at < schedule.start_at:
        raise ScheduleError("The end time must not be before the start time.")
    if schedule.schedule_type == ONE_TIME and schedule.run_at is None:
        raise ScheduleError("A one-time schedule needs a run time.")
    if schedule.schedule_type == CRON:
        _normalize_cron(schedule.cron)
    if schedule.schedule_type == INTERVAL:
        _interval_of(schedule)
        _interval_base_at(schedule)


def _quote(text: str) -> str:
    """Quote user text for an error message, shortened and with control characters escaped."""
    shown = text if len(text) <= 40 else text[:40] + "..."
    return "'" + shown.encode("unicode_escape").decode("ascii").replace("'", "\\'") + "'"


def _normalize_cron(expr: str) -> str:
    """Return the 5-field form of a valid cron expression or raise ScheduleError."""
    if not isinstance(expr, str):
        raise ScheduleError("The cron expression must be text such as '0 9 * * 1-5'.")
    return _normalize_cron_text(expr)


@functools.lru_cache(maxsize=512)
def _normalize_cron_text(expr: str) -> str:
    """Return the 5-field form of a valid cron expression string or raise ScheduleError."""
    text = expr.strip(" \t")
    if not text:
        raise ScheduleError("The cron expression is empty.")
    if len(text) > MAX_CRON_LENGTH_CHARS:
        raise ScheduleError(f"The cron expression is longer than {MAX_CRON_LENGTH_CHARS} characters.")
    if text.startswith("@"):
        return _alias_expression(text)
    fields = _CRON_FIELD_SEPARATOR.split(text)
    if len(fields) != len(_CRON_FIELDS):
        raise ScheduleError(
            "A cron expression needs exactly 5 fields (minute, hour, day of month, month, "
            f"day of week); {_quote(text)} has {len(fields)}."
        )
    for field, value in zip(_CRON_FIELDS, fields):
        _check_cron_field(field, value)
    normalized = " ".join(fields)
    _check_can_fire(normalized)
    return normalized


def _alias_expression(text: str) -> str:
    """Return the expression behind a cron alias or raise ScheduleError."""
    if text not in CRON_ALIASES:
        known = ", ".join(sorted(CRON_ALIASES))
        raise ScheduleError(f"Unsupported cron alias {_quote(text)}; use one of {known}.")
    return _ALIAS_EXPRESSIONS[text]


def _check_cron_field(field: _CronField, text: str) -> None:
    """Raise ScheduleError unless text is a valid list of items for the field."""
    items = text.split(",")
    if len(items) > 1 and "*" in items:
        raise ScheduleError(f"'*' already means every {field.name}; it cannot be part of a list.")
    for item in items:
        match = _CRON_ITEM.fullmatch(item)
        if match is None:
            raise ScheduleError(f"{_quote(item)} is not a valid {field.name} entry.")
        _check_cron_item(field, match)


def _check_cron_item(field: _CronField, match: re.Match[str]) -> None:
    """Raise ScheduleError for an out-of-range, backwards or badly stepped item."""
    start, end, step = match.group("start", "end", "step")
    if start == "*" and end is not None:
        raise ScheduleError(f"A range in the {field.name} field cannot start with '*'.")
    if start != "*":
        low = field.value(start)
        if end is not None and field.value(end) < low:
            raise ScheduleError(f"The {field.name} range {start}-{end} runs backwards.")
    if step is not None and not 1 <= int(step) <= field.high:
        raise ScheduleError(f"The {field.name} step {int(step)} must be between 1 and {field.high}.")


def _check_can_fire(expression: str) -> None:
    """Raise ScheduleError if the expression can never fire (a day ANDed with months lacking it)."""
    spec = _cron_spec(expression)
    if spec.days_or:
        return  # every day of the week comes round in every month
    if not any(day <= _DAYS_IN_MONTH[month - 1] for day in spec.days for month in spec.months):
        raise ScheduleError(
            f"The cron expression {_quote(expression)} never fires: "
            "none of its days of the month exists in its months."
        )


def parse_aware_instant(text: str) -> datetime:
    """Read ISO 8601 text with a UTC offset ('2026-10-25T00:00:00+02:00', '...Z') as a UTC instant.

    Raise ScheduleError with a sentence for anything else: a time without an offset is
    refused, not guessed, because around a DST change the zone decides which instant it is.
    """
    example = "such as 2026-10-25T00:00:00+02:00 or 2026-10-24T22:00:00Z"
    if not isinstance(text, str) or len(text) > MAX_INSTANT_LENGTH_CHARS:
        raise ScheduleError(f"Give the instant as an ISO 8601 date-time with a UTC offset, {example}.")
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ScheduleError(f"{_quote(text)} is not an ISO 8601 date-time; write one {example}.") from None
    if parsed.utcoffset() is None:
        raise ScheduleError(f"{_quote(text)} has no UTC offset; add one (Z, +02:00, ...), {example}.")
    try:
        return parsed.astimezone(_UTC)
    except OverflowError:
        raise ScheduleError(f"{_quote(text)} is out of range.") from None


def _require_aware(value: datetime, name: str) -> None:
    """Raise ValueError unless value is a timezone-aware datetime."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime.")


def _require_aware_or_none(value: datetime | None, name: str) -> None:
    """Raise ScheduleError if a schedule datetime is present but naive."""
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise ScheduleError(f"The schedule's {name} must be a timezone-aware datetime.")


# --- description ---------------------------------------------------------------


def describe_cron(expr: str) -> str:
    """Return a human sentence for a cron expression, e.g. 'At 09:00, Monday through Friday'.

    A valid expression that cron_descriptor cannot phrase (some lists mixing
    steps, such as '0 5,5/2 * * *') gets a plain fallback sentence.
    """
    expression = _normalize_cron(expr)
    options = Options(
        casing_type=CasingTypeEnum.Sentence,
        use_24hour_time_format=True,
        locale_code="en_US",
        verbose=False,
        day_of_week_start_index_zero=True,
    )
    try:
        description = ExpressionDescriptor(expression, options).get_description()
    except Exception:  # cron_descriptor raises assorted errors on lists it cannot phrase
        return f"Runs on the cron schedule {_quote(expression)}"
    if not _cron_spec(expression).days_or:
        # cron_descriptor ORs the day fields whenever both are set; cronie ANDs them here.
        description = description.replace(", or on ", ", and only on ")
    return description


# --- public schedule maths -----------------------------------------------------


def next_fire_at(schedule: Schedule, after: datetime) -> datetime | None:
    """Return the first fire time strictly after `after`, or None if there is none."""
    _require_aware(after, "after")
    validate_schedule(schedule)
    return _next_fire_at(schedule, after)


def _next_fire_at(schedule: Schedule, after: datetime) -> datetime | None:
    """next_fire_at for a schedule already validated."""
    if schedule.schedule_type != CRON:
        return next(_iter_fire_times(schedule, after), None)
    search_after = _search_after(schedule, after)
    fire_at = _next_cron_fire_at(_normalize_cron(schedule.cron), schedule.timezone, search_after)
    if fire_at is None or (schedule.end_at is not None and fire_at > schedule.end_at):
        return None
    return fire_at


@functools.lru_cache(maxsize=4096)
def _next_cron_fire_at(expression: str, zone_name: str, after: datetime) -> datetime | None:
    """Memoised first cron fire after an instant: many tasks share an expression and a `now`."""
    return next(_iter_cron_fire_times(expression, validate_timezone(zone_name), after), None)


def first_fire_at(schedule: Schedule, now: datetime) -> datetime | None:
    """Return the first fire time of a new task; a past one-time run_at runs at once."""
    _require_aware(now, "now")
    if schedule.schedule_type == ONE_TIME:
        validate_schedule(schedule)
        run_at = _to_utc(schedule.run_at)
        return run_at if _within_bounds(schedule, run_at) else None
    return next_fire_at(schedule, now)


def fire_times(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """Return up to `count` (clamped to 1..50) successive fire times after `after`."""
    wanted = min(max(int(count), 1), MAX_PREVIEW_COUNT)
    _require_aware(after, "after")
    validate_schedule(schedule)
    return list(islice(_iter_fire_times(schedule, after), wanted))


def missed_fire_times(
    schedule: Schedule, scheduled_at: datetime, now: datetime, limit: int = DEFAULT_MISSED_LIMIT
) -> tuple[int, datetime]:
    """Return (fire times in [scheduled_at, now] capped at limit, the latest of them).

    scheduled_at itself always counts, even if the clock says it is not quite due.
    """
    _require_aware(scheduled_at, "scheduled_at")
    _require_aware(now, "now")
    validate_schedule(schedule)
    return _missed_fire_times(schedule, scheduled_at, now, limit)


def catch_up(
    schedule: Schedule, scheduled_at: datetime, now: datetime, limit: int = DEFAULT_MISSED_LIMIT
) -> tuple[int, datetime, datetime | None]:
    """For an occurrence due at scheduled_at, seen at now: missed_fire_times, and the first fire
    time after the latest of them (the task's next occurrence), validating the schedule once."""
    _require_aware(scheduled_at, "scheduled_at")
    _require_aware(now, "now")
    validate_schedule(schedule)
    count, latest_at = _missed_fire_times(schedule, scheduled_at, now, limit)
    return count, latest_at, _next_fire_at(schedule, latest_at)


def _missed_fire_times(schedule: Schedule, scheduled_at: datetime, now: datetime, limit: int) -> tuple[int, datetime]:
    scheduled_at = _to_utc(scheduled_at)
    cap = max(int(limit), 1)
    if schedule.schedule_type == ONE_TIME:
        return 1, _to_utc(schedule.run_at)
    horizon_at = _to_utc(now) if schedule.end_at is None else min(_to_utc(now), _to_utc(schedule.end_at))
    if horizon_at <= scheduled_at:
        return 1, scheduled_at
    if schedule.schedule_type == INTERVAL:
        return _missed_interval_fire_times(schedule, scheduled_at, horizon_at, cap)
    return _missed_cron_fire_times(schedule, scheduled_at, horizon_at, cap)


# --- shared plumbing -------------------------------------------------------------


def _to_utc(value: datetime) -> datetime:
    """Return the same instant expressed in UTC."""
    return value.astimezone(_UTC)


def _within_bounds(schedule: Schedule, fire_at: datetime) -> bool:
    """Tell whether a fire time lies inside the schedule's [start_at, end_at] window."""
    if schedule.start_at is not None and fire_at < schedule.start_at:
        return False
    return schedule.end_at is None or fire_at <= schedule.end_at


def _search_after(schedule: Schedule, after: datetime) -> datetime:
    """Return the instant after which to search (no fire before start_at); the schedule is valid."""
    search_after = _to_utc(after)
    if schedule.start_at is not None:
        search_after = max(search_after, _to_utc(schedule.start_at) - _ONE_MICROSECOND)
    return search_after


def _iter_fire_times(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """Yield the schedule's fire times strictly after `after`, in order, within its bounds."""
    search_after = _search_after(schedule, after)
    for fire_at in _iter_unbounded_fire_times(schedule, search_after):
        if schedule.end_at is not None and fire_at > schedule.end_at:
            return
        yield fire_at


def _iter_unbounded_fire_times(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """Yield fire times strictly after `after`, ignoring end_at."""
    if schedule.schedule_type == ONE_TIME:
        run_at = _to_utc(schedule.run_at)
        return iter([run_at] if run_at > after else [])
    if schedule.schedule_type == INTERVAL:
        return _iter_interval_fire_times(_interval_base_at(schedule), _interval_of(schedule), after)
    zone = validate_timezone(schedule.timezone)
    return _iter_cron_fire_times(_normalize_cron(schedule.cron), zone, after)


# --- INTERVAL ----------------------------------------------------------------------


def _interval_of(schedule: Schedule) -> timedelta:
    """Return the schedule's interval as an exact timedelta or raise ScheduleError."""
    seconds = schedule.interval_seconds
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
        raise ScheduleError("An interval schedule needs a whole number of seconds, at least 1.")
    try:
        return timedelta(seconds=seconds)
    except OverflowError as exc:
        raise ScheduleError("The interval is too long.") from exc


def _interval_base_at(schedule: Schedule) -> datetime:
    """Return the instant interval fires are counted from: start_at, else anchor_at."""
    base_at = schedule.start_at or schedule.anchor_at
    if base_at is None:
        raise ScheduleError("An interval schedule needs a start time or an anchor time.")
    return _to_utc(base_at)


def _interval_index_at(base_at: datetime, interval: timedelta, at: datetime) -> int:
    """Return k of the last fire base + k*interval at or before `at` (-1 if before base)."""
    if at < base_at:
        return -1
    return (at - base_at) // interval  # exact integer division of microsecond counts


def _iter_interval_fire_times(base_at: datetime, interval: timedelta, after: datetime) -> Iterator[datetime]:
    """Yield base + k*interval (k >= 0) strictly after `after`, computed exactly."""
    index = _interval_index_at(base_at, interval, after) + 1
    try:
        while True:
            yield base_at + index * interval
            index += 1
    except OverflowError:
        return


def _missed_interval_fire_times(
    schedule: Schedule, scheduled_at: datetime, horizon_at: datetime, cap: int
) -> tuple[int, datetime]:
    """Count interval fires in [scheduled_at, horizon_at] in O(1)."""
    base_at, interval = _interval_base_at(schedule), _interval_of(schedule)
    last_index = _interval_index_at(base_at, interval, horizon_at)
    later_fires = last_index - _interval_index_at(base_at, interval, scheduled_at)
    if later_fires <= 0:
        return 1, scheduled_at
    return min(1 + later_fires, cap), base_at + last_index * interval


# --- CRON --------------------------------------------------------------------------


@dataclass(frozen=True)
class _CronSpec:
    """A cron expression as cronie's entry.c reads it: the values each field allows, and its flags."""

    minutes_of_day: tuple[int, ...]  # sorted hour * 60 + minute for every allowed hour and minute
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday; 7 is folded onto 0
    days_or: bool  # neither day field starts with '*': a day matching either field matches
    wildcard: bool  # the minute or hour field starts with '*': the job follows real time across DST

    def matches_day(self, day: date) -> bool:
        """Tell whether the expression fires on a local calendar day (cron.c's month and day test)."""
        if day.month not in self.months:
            return False
        in_days, in_weekdays = day.day in self.days, day.isoweekday() % 7 in self.weekdays
        return (in_days or in_weekdays) if self.days_or else (in_days and in_weekdays)


@functools.lru_cache(maxsize=512)
def _cron_spec(expression: str) -> _CronSpec:
    """Read a normalized (valid, 5-field) expression; flags as entry.c sets them from each field's first character."""
    texts = expression.split(" ")
    minutes, hours, days, months, weekdays = (_field_values(f, t) for f, t in zip(_CRON_FIELDS, texts))
    minute_text, hour_text, day_text, _, weekday_text = texts
    return _CronSpec(
        minutes_of_day=tuple(sorted(hour * 60 + minute for hour in hours for minute in minutes)),
        days=days,
        months=months,
        weekdays=frozenset(weekday % 7 for weekday in weekdays),
        days_or=not (day_text.startswith("*") or weekday_text.startswith("*")),
        wildcard=minute_text.startswith("*") or hour_text.startswith("*"),
    )


def _field_values(field: _CronField, text: str) -> frozenset[int]:
    """Return the values a valid field allows: '*' is low-high, 'a/s' is a-high/s (croniter's reading)."""
    values: set[int] = set()
    for item in text.split(","):
        match = _CRON_ITEM.fullmatch(item)
        assert match is not None  # the expression is valid
        start, end, step = match.group("start", "end", "step")
        if start == "*":
            low, high = field.low, field.high
        else:
            low = field.value(start)
            high = field.value(end) if end is not None else field.high if step is not None else low
        values.update(range(low, high + 1, int(step or 1)))
    return frozenset(values)


def _walls_from(spec: _CronSpec, start: datetime) -> Iterator[datetime]:
    """Yield the naive wall times at or after `start` the expression matches, in order (to the end of time)."""
    day = start.date()
    first_minute = start.hour * 60 + start.minute + (1 if start.second or start.microsecond else 0)
    while True:
        if day.month not in spec.months:
            day, first_minute = _first_of_next_month(day), 0
            continue
        if spec.matches_day(day):
            for minute in spec.minutes_of_day[bisect_left(spec.minutes_of_day, first_minute):]:
                yield datetime(day.year, day.month, day.day, minute // 60, minute % 60)
        day, first_minute = day + _ONE_DAY, 0


def _walls_until(spec: _CronSpec, end: datetime) -> Iterator[datetime]:
    """Yield the naive wall times at or before `end` the expression matches, latest first."""
    day, last_minute = end.date(), end.hour * 60 + end.minute
    while True:
        if day.month not in spec.months:
            day, last_minute = day.replace(day=1) - _ONE_DAY, _MINUTES_PER_DAY
            continue
        if spec.matches_day(day):
            for minute in reversed(spec.minutes_of_day[:bisect_right(spec.minutes_of_day, last_minute)]):
                yield datetime(day.year, day.month, day.day, minute // 60, minute % 60)
        day, last_minute = day - _ONE_DAY, _MINUTES_PER_DAY


def _first_of_next_month(day: date) -> date:
    """Return the first day of the month after day's (ValueError past the year 9999)."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


class _WallKind(Enum):
    NORMAL = "normal"  # the wall time happens exactly once
    REPEATED = "repeated"  # fall back: it happens twice (earliest_at, latest_at)
    SKIPPED = "skipped"  # spring forward: it never happens; both fields hold the gap's end


@dataclass(frozen=True)
class _WallPlacement:
    """Where a local wall-clock time lands on the real (UTC) time line."""

    kind: _WallKind
    earliest_at: datetime
    latest_at: datetime


def _place_wall_time(wall: datetime, zone: ZoneInfo) -> _WallPlacement:
    """Locate a naive local wall time on the UTC time line."""
    first_at = _to_utc(wall.replace(tzinfo=zone, fold=0))
    second_at = _to_utc(wall.replace(tzinfo=zone, fold=1))
    if first_at == second_at:
        return _WallPlacement(_WallKind.NORMAL, first_at, first_at)
    if first_at < second_at:
        return _WallPlacement(_WallKind.REPEATED, first_at, second_at)
    gap_end_at = _transition_at(zone, second_at, first_at)
    return _WallPlacement(_WallKind.SKIPPED, gap_end_at, gap_end_at)


def _transition_at(zone: ZoneInfo, before_at: datetime, after_at: datetime) -> datetime:
    """Return the first instant in (before_at, after_at] whose UTC offset differs from before_at's."""
    old_offset = before_at.astimezone(zone).utcoffset()
    low, high = 0, int((after_at - before_at) / _ONE_SECOND)
    while high - low > 1:
        middle = (low + high) // 2
        if (before_at + middle * _ONE_SECOND).astimezone(zone).utcoffset() == old_offset:
            low = middle
        else:
            high = middle
    return before_at + high * _ONE_SECOND


def _fire_instants_for_wall(placement: _WallPlacement, wildcard: bool) -> tuple[datetime, ...]:
    """Apply cronie's DST rules (cron.c): the real instants at which a matching wall time fires.

    A wildcard job runs for each real minute whose wall time matches: both passes of
    a repeated time, none of a skipped one.  A fixed-time job runs a repeated time
    on its first pass only, and a skipped one as soon as the clock has jumped.
    """
    if placement.kind is _WallKind.NORMAL:
        return (placement.earliest_at,)
    if placement.kind is _WallKind.REPEATED:
        if wildcard:
            return (placement.earliest_at, placement.latest_at)
        return (placement.earliest_at,)
    return () if wildcard else (placement.earliest_at,)


def _utc_offset_at(zone: ZoneInfo, at: datetime) -> timedelta:
    """Return the zone's UTC offset at an instant."""
    offset = at.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return offset


def _search_start_wall(zone: ZoneInfo, after: datetime) -> datetime:
    """Return a naive wall time before every wall time that can fire after `after`."""
    fall_back = _utc_offset_at(zone, after) - _utc_offset_at(zone, after + _TRANSITION_LOOKAHEAD)
    local_wall = after.astimezone(zone).replace(tzinfo=None)
    return local_wall - max(fall_back, timedelta(0)) - _SEARCH_SLACK


def _search_end_wall(zone: ZoneInfo, at: datetime) -> datetime:
    """Return a naive wall time after every wall time that can fire at or before `at`."""
    fall_back = _utc_offset_at(zone, at - _TRANSITION_LOOKAHEAD) - _utc_offset_at(zone, at)
    local_wall = at.astimezone(zone).replace(tzinfo=None)
    return local_wall + max(fall_back, timedelta(0)) + _SEARCH_SLACK


def _iter_cron_fire_times(expression: str, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Yield the cron fire times strictly after `after`, in order and without duplicates."""
    spec = _cron_spec(expression)
    pending: list[datetime] = []
    last_at = after
    try:
        for wall in _walls_from(spec, _search_start_wall(zone, after)):
            placement = _place_wall_time(wall, zone)
            # Wall times only move forward, and no later wall fires before this
            # one's earliest instant, so everything pending up to it is final.
            while pending and pending[0] <= placement.earliest_at:
                fire_at = heapq.heappop(pending)
                if fire_at > last_at:
                    last_at = fire_at
                    yield fire_at
            for fire_at in _fire_instants_for_wall(placement, spec.wildcard):
                if fire_at > last_at:
                    heapq.heappush(pending, fire_at)
    except _END_OF_TIME_ERRORS:
        pass
    for fire_at in sorted(set(pending)):
        if fire_at > last_at:
            yield fire_at


def _previous_cron_fire_at(expression: str, zone: ZoneInfo, at: datetime) -> datetime | None:
    """Return the latest cron fire time at or before `at`, or None."""
    spec = _cron_spec(expression)
    best_at: datetime | None = None
    try:
        for wall in _walls_until(spec, _search_end_wall(zone, at)):
            placement = _place_wall_time(wall, zone)
            # No earlier wall fires after this one's latest instant.
            if best_at is not None and placement.latest_at <= best_at:
                return best_at
            for fire_at in _fire_instants_for_wall(placement, spec.wildcard):
                if fire_at <= at and (best_at is None or fire_at > best_at):
                    best_at = fire_at
    except _END_OF_TIME_ERRORS:
        pass
    return best_at


def _missed_cron_fire_times(
    schedule: Schedule, scheduled_at: datetime, horizon_at: datetime, cap: int
) -> tuple[int, datetime]:
    """Count cron fires in [scheduled_at, horizon_at], stopping at cap, and find the latest."""
    count, latest_at = 1, scheduled_at
    for fire_at in _iter_fire_times(schedule, scheduled_at):
        if fire_at > horizon_at:
            return count, latest_at
        if count == cap:
            break
        count, latest_at = count + 1, fire_at
    else:
        return count, latest_at
    zone = validate_timezone(schedule.timezone)
    previous_at = _previous_cron_fire_at(_normalize_cron(schedule.cron), zone, horizon_at)
    return count, max(latest_at, previous_at or latest_at)
