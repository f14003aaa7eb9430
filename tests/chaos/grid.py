"""The schedule grid each task owes, computed independently of the engine from the test's own edit history.

INTERVAL: start + k·interval (the anchor is the task's created_at; k ≥ 1). CRON: the minute boundaries
whose minute is a multiple of the step of `* * * * *` / `*/N * * * *` (UTC; the only expressions the
chaos test uses). ONE_TIME: run_at, exactly once. A change (edit, disable, enable) is a window
[before, after] between the request going out and its answer; fire times inside it may or may not
be owed (tolerated), and so may those in the short margin before it (the scheduler may have been
about to move them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

CHANGE_MARGIN = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
EXPECTED, TOLERATED = "expected", "tolerated"


@dataclass(frozen=True)
class State:
    """What a task's schedule is between two changes."""

    enabled: bool
    interval_seconds: int | None = None
    cron: str | None = None


@dataclass(frozen=True)
class Change:
    """One change of a task as the test made it: sent at `before`, answered at `after`."""

    before: datetime
    after: datetime
    state: State
    what: str


@dataclass
class Timeline:
    """A task's identity and every change the test made to it, in order."""

    task_id: int
    name: str
    schedule_type: str
    anchor_at: datetime
    run_at: datetime | None = None
    changes: list[Change] = field(default_factory=list)

    @property
    def state(self) -> State:
        return self.changes[-1].state


@dataclass(frozen=True)
class GridPoint:
    at: datetime
    kind: str  # EXPECTED or TOLERATED
    segment: int  # index of the change whose state makes this point a fire time


def cron_step_minutes(cron: str) -> int:
    """The minute step of `* * * * *` (1) or `*/N * * * *` (N); nothing else is used."""
    minute, rest = cron.split(" ", 1)
    if rest.split() != ["*"] * 4:
        raise ValueError(f"the chaos grid only knows minute-step expressions, not {cron!r}")
    return 1 if minute == "*" else int(minute.removeprefix("*/"))


def fire_times(timeline: Timeline, state: State, low: datetime, high: datetime) -> list[datetime]:
    """The state's fire times in (low, high]."""
    if high <= low:
        return []
    if timeline.schedule_type == "INTERVAL":
        step = timedelta(seconds=state.interval_seconds)
        k = max((low - timeline.anchor_at) // step + 1, 1)
        found = []
        while timeline.anchor_at + k * step <= high:
            found.append(timeline.anchor_at + k * step)
            k += 1
        return found
    step_minutes = cron_step_minutes(state.cron)
    at = low.replace(second=0, microsecond=0) + MINUTE
    found = []
    while at <= high:
        if at.minute % step_minutes == 0:
            found.append(at)
        at += MINUTE
    return found


def grid(timeline: Timeline, horizon: datetime, until: datetime | None = None) -> list[GridPoint]:
    """Every fire time of a periodic task up to `until`, in time order: expected or tolerated up to
    `horizon` (the end of the checked period), tolerated after it."""
    until = max(until or horizon, horizon)
    owed = {p.at: p for p in _grid(timeline, horizon)}
    return [owed.get(p.at) or GridPoint(p.at, TOLERATED, p.segment) for p in _grid(timeline, until)]


def _grid(timeline: Timeline, horizon: datetime) -> list[GridPoint]:
    points: dict[datetime, GridPoint] = {}
    changes = timeline.changes
    for index, change in enumerate(changes):
        if not change.state.enabled:
            continue
        following = changes[index + 1] if index + 1 < len(changes) else None
        owed_until = min(following.before - CHANGE_MARGIN, horizon) if following else horizon
        spans = [(change.before, change.after, TOLERATED), (change.after, owed_until, EXPECTED)]
        if following:
            spans.append((owed_until, min(following.after, horizon), TOLERATED))
        for low, high, kind in spans:
            for at in fire_times(timeline, change.state, low, high):
                known = points.get(at)
                if known is None or (known.kind == TOLERATED and kind == EXPECTED):
                    points[at] = GridPoint(at, kind, index)
    return [points[at] for at in sorted(points)]


def one_time_grid(timeline: Timeline, horizon: datetime) -> list[GridPoint]:
    """A ONE_TIME task owes exactly one run at run_at (a toggle delays it, never cancels it)."""
    assert timeline.run_at is not None
    return [GridPoint(timeline.run_at, EXPECTED if timeline.run_at <= horizon else TOLERATED, 0)]


def utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
