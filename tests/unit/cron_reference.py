"""A tiny, obviously-correct reference for cron, written from cronie (tests only, no Chime code).

Matching follows cronie's src/cron.c `find_jobs`: minute, hour and month must match, and the day
test is `(DOM_STAR || DOW_STAR) ? (dom && dow) : (dom || dow)`, where src/entry.c sets DOM_STAR /
DOW_STAR when the field's first character is '*'; MIN_STAR / HR_STAR likewise make a "wildcard" job.

Time follows cron.c's main loop, simulated minute by minute over real (UTC) minutes with the wall
clock of the job's zone: `virtual` is the wall minute all jobs have run for.
- the wall clock moved on by one minute: every job matching it runs;
- it jumped forward (spring forward): wildcard jobs run for the current minute only; fixed-time
  jobs run once if any wall minute from virtual+1 up to the current one matches;
- it went back (fall back): only wildcard jobs run, and `virtual` stays until the clock is past it.
(cron.c treats a jump of 2-5 minutes like one of one minute and a jump of more than 3 hours as a
clock correction; no zone used by the tests has either, so the reference leaves both out.)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
ONE_MINUTE = timedelta(minutes=1)
# Longer than any DST shift, so the simulation has settled before the first instant it reports.
WARM_UP = timedelta(hours=4)
RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
NAMES = (
    (), (), (),
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
)
ALIASES = {  # cronie's entry.c, as the 5-field entries that set the same bits and flags
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class Entry:
    """One parsed crontab entry: the allowed values of each field and entry.c's flags."""

    fields: tuple[frozenset[int], ...]
    dom_star: bool
    dow_star: bool
    wildcard: bool

    def matches(self, wall: datetime) -> bool:
        """cron.c: does this (naive, local) wall minute match the entry?"""
        minutes, hours, doms, months, dows = self.fields
        dom, dow = wall.day in doms, (wall.weekday() + 1) % 7 in dows
        day = (dom and dow) if (self.dom_star or self.dow_star) else (dom or dow)
        return wall.minute in minutes and wall.hour in hours and wall.month in months and day


def parse(expression: str) -> Entry:
    """Parse a 5-field expression or alias ('a/s' alone means a-last/s, as Chime accepts it)."""
    texts = ALIASES.get(expression.strip(), expression).split()
    fields = [_expand(text, low, high, names) for text, (low, high), names in zip(texts, RANGES, NAMES)]
    fields[4] = frozenset(day % 7 for day in fields[4])  # 7 is Sunday too
    return Entry(tuple(fields), texts[2][0] == "*", texts[4][0] == "*", texts[0][0] == "*" or texts[1][0] == "*")


def _expand(text: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (_number(part, names) for part in span.split("-"))
        else:
            first = _number(span, names)
            last = high if step else first
        values.update(range(first, last + 1, int(step or 1)))
    return frozenset(values)


def _number(text: str, names: tuple[str, ...]) -> int:
    if text.isdigit():
        return int(text)
    return names.index(text.lower()) + (1 if len(names) == 12 else 0)


def fires_between(expression: str, zone_name: str, after: datetime, until: datetime) -> list[datetime]:
    """The instants in (after, until] at which cronie would run the job, in UTC, by brute force."""
    entry, zone = parse(expression), ZoneInfo(zone_name)
    instant = (after - WARM_UP).astimezone(UTC).replace(second=0, microsecond=0)
    virtual = _wall(instant, zone)
    fires = []
    while instant < until:
        instant += ONE_MINUTE
        wall = _wall(instant, zone)
        if wall > virtual + ONE_MINUTE:  # jumped forward
            runs = entry.matches(wall) if entry.wildcard else any(
                entry.matches(virtual + step * ONE_MINUTE) for step in range(1, (wall - virtual) // ONE_MINUTE + 1)
            )
        elif wall <= virtual:  # went back
            runs = entry.wildcard and entry.matches(wall)
        else:
            runs = entry.matches(wall)
        virtual = max(virtual, wall)
        if runs and after < instant <= until:
            fires.append(instant)
    return fires


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall minute shown at a real instant."""
    return instant.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)


def first_fire_in_utc(expression: str, after: datetime, years: int = 30) -> datetime | None:
    """The first instant after `after` at which cronie would run the job in UTC (no DST), by brute force.

    Days are skipped whole when the entry matches no minute of them, so sparse entries stay cheap.
    """
    entry = parse(expression)
    first_wall = (after.astimezone(UTC).replace(tzinfo=None, second=0, microsecond=0)) + ONE_MINUTE
    probe_time = first_wall.replace(hour=min(entry.fields[1]), minute=min(entry.fields[0]))
    day = first_wall.date()
    for _ in range(366 * years):
        if entry.matches(datetime.combine(day, probe_time.time())):  # the day matches
            wall = max(datetime.combine(day, datetime.min.time()), first_wall)
            while wall.date() == day:
                if entry.matches(wall):
                    return wall.replace(tzinfo=UTC)
                wall += ONE_MINUTE
        day += timedelta(days=1)
    return None
