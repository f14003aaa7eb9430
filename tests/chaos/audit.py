"""Judge every task's execution log against the grid it owes: lost, doubled, stuck, side effects.

An occurrence's outcome is the group of its attempts (same task and scheduled_for). A group covers
N fire times ending at its scheduled_for: N = 1 for a plain run or skip; for a "missed: N
occurrence(s)" SKIPPED record the N of its message; for a coalesced RECOVERY run the N of the
"recovered" notification the dispatcher writes with it ("(N missed, …)"). Any other SKIPPED record
that says "N occurrence(s)" covers N. A count the engine does not write is not guessed: an overlap
skip that gives none covers its own fire time only, so a coalesced one shows as the loss of the fire
times it swallowed. (A RECOVERY run without its notification covers the uncovered fire times just
before it, and is listed as assumed.)
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tests.chaos.grid import EXPECTED, GridPoint, Timeline, grid, one_time_grid

FINAL = ("SUCCESS", "FAILED", "SKIPPED")
COUNTED = re.compile(r"(?:at least )?(\d+) occurrence\(s\)")  # "missed: N occurrence(s) …", or any skip that says N
RECOVERED = re.compile(r"Running the occurrence due at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:\S+ )?\(([+-]\d\d:\d\d)\) \((\d+) missed")
HIT_TOLERANCE = timedelta(seconds=1)
SKIP_TOLERANCE = timedelta(seconds=1)
OVERLAP_SKIP = "previous run still running"


@dataclass(frozen=True)
class Run:
    """One execution row, as plain data."""

    id: int
    task_id: int
    scheduled_for: datetime
    attempt: int
    status: str
    trigger: str
    message: str
    started_at: datetime | None
    finished_at: datetime | None
    retry_at: datetime | None
    worker: str | None


@dataclass
class Group:
    """Every attempt of one occurrence of one task."""

    scheduled_for: datetime
    runs: list[Run]
    covers: int | None = None  # None: not written anywhere

    @property
    def first(self) -> Run:
        return min(self.runs, key=lambda r: r.attempt)

    @property
    def last(self) -> Run:
        return max(self.runs, key=lambda r: r.attempt)

    def describe(self) -> str:
        steps = ", ".join(f"#{r.attempt} {r.trigger} {r.status}" + (f" '{r.message[:60]}'" if r.message else "")
                          + (f" (at {r.started_at.time()})" if r.started_at else "")
                          for r in sorted(self.runs, key=lambda r: r.attempt))
        return f"{self.scheduled_for.isoformat()} covers={self.covers}: {steps}"


@dataclass(frozen=True)
class Finding:
    kind: str  # lost, doubled, stuck, side_effect, unexpected, false_skip, assumed, dropped
    task: Timeline
    at: datetime
    detail: str


@dataclass
class Audit:
    expected: int = 0
    findings: list[Finding] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    def of(self, *kinds: str) -> list[Finding]:
        return [f for f in self.findings if f.kind in kinds]


def groups_of(runs: list[Run], recovered: dict[tuple[int, datetime], int], one_time: bool = False) -> list[Group]:
    """Group a task's non-manual runs by occurrence and work out how many fire times each covers
    (a ONE_TIME task has one fire time: nothing to coalesce)."""
    by_time: dict[datetime, list[Run]] = defaultdict(list)
    for run in runs:
        if run.trigger != "MANUAL":
            by_time[run.scheduled_for].append(run)
    groups = [Group(at, found) for at, found in sorted(by_time.items())]
    for group in groups:
        group.covers = 1 if one_time else coverage_of(group, recovered)
    return groups


def coverage_of(group: Group, recovered: dict[tuple[int, datetime], int]) -> int | None:
    first = group.first
    missed = COUNTED.search(first.message or "") if first.status == "SKIPPED" else None
    if missed:
        return int(missed.group(1))
    if first.trigger == "RECOVERY":
        return recovered.get((first.task_id, group.scheduled_for))
    return 1


def audit(timelines: list[Timeline], runs: list[Run], recovered: dict[tuple[int, datetime], int],
          hits: dict[str, list[float]], horizon: datetime,
          dropped: frozenset[tuple[int, datetime]] = frozenset()) -> Audit:
    """Check every task; see the module's docstring. `dropped`: occurrences a worker's log says it
    dropped because their task had been disabled (documented: not a loss)."""
    result = Audit()
    by_task: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        by_task[run.task_id].append(run)
    for timeline in timelines:
        task_runs = by_task.get(timeline.task_id, [])
        one_time = timeline.schedule_type == "ONE_TIME"
        until = max((r.scheduled_for for r in task_runs), default=horizon)
        points = one_time_grid(timeline, horizon) if one_time else grid(timeline, horizon, until)
        groups = groups_of(task_runs, recovered, one_time)
        result.expected += sum(1 for p in points if p.kind == EXPECTED)
        check_coverage(result, timeline, points, groups, dropped)
        check_stuck(result, timeline, task_runs)
        check_overlap_skips(result, timeline, task_runs)
        check_side_effects(result, timeline, task_runs, [t for t in hits.get(timeline.name, [])])
    return result


def check_coverage(result: Audit, timeline: Timeline, points: list[GridPoint], groups: list[Group],
                   dropped: frozenset[tuple[int, datetime]] = frozenset()) -> None:
    """Each expected fire time covered exactly once, each tolerated one at most once, nothing off the grid."""
    times = [p.at for p in points]
    index = {at: i for i, at in enumerate(times)}
    covered: dict[datetime, list[Group]] = defaultdict(list)
    unknown = []
    for group in groups:
        at = group.scheduled_for
        if at not in index:
            result.findings.append(Finding("unexpected", timeline, at, f"a record off the grid: {group.describe()}"))
            continue
        if sum(1 for r in group.runs if r.status == "SUCCESS") > 1:
            result.findings.append(Finding("doubled", timeline, at, f"succeeded twice: {group.describe()}"))
        if group.covers is None:
            unknown.append(group)
            continue
        segment = points[index[at]].segment
        low = index[at] - group.covers + 1
        for point in points[max(low, 0):index[at] + 1]:
            if point.segment == segment or point.at == at:
                covered[point.at].append(group)
    for group in unknown:
        assume_coalesced(result, timeline, points, index, covered, group)
    for point in points:
        found = covered.get(point.at, [])
        if not found and point.kind == EXPECTED:
            if (timeline.task_id, point.at) in dropped and disabled_after(timeline, point.at):
                result.findings.append(Finding("dropped", timeline, point.at, "queued, then dropped: task disabled"))
            else:
                result.findings.append(Finding("lost", timeline, point.at, "no run, no SKIPPED, no RECOVERY covers it"))
        if len(found) > 1:
            result.findings.append(Finding("doubled", timeline, point.at, "covered by " + " AND ".join(
                g.describe() for g in found)))


def disabled_after(timeline: Timeline, at: datetime) -> bool:
    """Whether the test disabled the task after `at` (a worker then drops its queued occurrences)."""
    return any(not c.state.enabled and c.after >= at for c in timeline.changes)


def assume_coalesced(result: Audit, timeline: Timeline, points: list[GridPoint], index: dict[datetime, int],
                     covered: dict[datetime, list[Group]], group: Group) -> None:
    """A group whose count is written nowhere covers itself and the uncovered fire times just before it."""
    position = index[group.scheduled_for]
    covered[group.scheduled_for].append(group)
    assumed = 0
    while position - assumed - 1 >= 0 and not covered.get(points[position - assumed - 1].at) \
            and points[position - assumed - 1].segment == points[position].segment:
        assumed += 1
        covered[points[position - assumed].at].append(group)
    if assumed:
        result.findings.append(Finding("assumed", timeline, group.scheduled_for,
                                       f"taken to cover {assumed} earlier fire time(s): {group.describe()}"))


def check_stuck(result: Audit, timeline: Timeline, runs: list[Run]) -> None:
    """Nothing RUNNING; every attempt that promised a retry (RETRYING, or closed with retry_at) has it."""
    attempts = {(r.scheduled_for, r.attempt) for r in runs}
    for run in runs:
        if run.status not in FINAL and run.status != "RETRYING":
            result.findings.append(Finding("stuck", timeline, run.scheduled_for,
                                           f"execution {run.id} attempt {run.attempt} still {run.status}"))
        elif (run.status == "RETRYING" or run.retry_at is not None) and \
                (run.scheduled_for, run.attempt + 1) not in attempts:
            result.findings.append(Finding("stuck", timeline, run.scheduled_for,
                                           f"execution {run.id} attempt {run.attempt} {run.status} "
                                           f"'{run.message}' promised a retry at {run.retry_at} that never came"))


def check_overlap_skips(result: Audit, timeline: Timeline, runs: list[Run]) -> None:
    """A "previous run still running" skip needs another occurrence of the task owed and unfinished
    when it was recorded: between that occurrence's scheduled time and the end of its attempt."""
    for skip in runs:
        if skip.status != "SKIPPED" or not (skip.message or "").startswith(OVERLAP_SKIP) or skip.started_at is None:
            continue
        recorded_at = skip.started_at
        busy = [r for r in runs if r.scheduled_for != skip.scheduled_for and r.trigger != "MANUAL"
                and r.scheduled_for - SKIP_TOLERANCE <= recorded_at
                and (r.finished_at is None or recorded_at <= r.finished_at + SKIP_TOLERANCE)]
        if not busy:
            result.findings.append(Finding("false_skip", timeline, skip.scheduled_for,
                                           f"execution {skip.id} SKIPPED '{OVERLAP_SKIP}' at {recorded_at.isoformat()} "
                                           "but no other occurrence of the task was queued or running then"))


def check_side_effects(result: Audit, timeline: Timeline, runs: list[Run], hit_times: list[float]) -> None:
    """Every recorded SUCCESS hit the server once during its run; any other hit belongs to a run that
    ended without a recorded success (worker lost, failed), at most one each."""
    hits = sorted(datetime.fromtimestamp(t, tz=runs[0].scheduled_for.tzinfo) for t in hit_times) if runs else []
    if not runs and hit_times:
        result.findings.append(Finding("side_effect", timeline, timeline.anchor_at,
                                       f"{len(hit_times)} hit(s) but no run at all"))
        return
    used = [False] * len(hits)
    for run in sorted((r for r in runs if r.status == "SUCCESS"), key=lambda r: r.started_at):
        slot = next((i for i, at in enumerate(hits) if not used[i]
                     and run.started_at - HIT_TOLERANCE <= at <= run.finished_at + HIT_TOLERANCE), None)
        if slot is None:
            result.findings.append(Finding("side_effect", timeline, run.scheduled_for,
                                           f"execution {run.id} SUCCESS at {run.started_at.isoformat()} "
                                           "but the server saw no hit during it"))
        else:
            used[slot] = True
    others = sorted((r for r in runs if r.status in ("FAILED", "RETRYING") and r.started_at),
                    key=lambda r: r.started_at)
    for run in others:
        slot = next((i for i, at in enumerate(hits) if not used[i] and at >= run.started_at - HIT_TOLERANCE), None)
        if slot is not None:
            used[slot] = True
    for at, was_used in zip(hits, used):
        if not was_used:
            result.findings.append(Finding("side_effect", timeline, at,
                                           "a hit that no recorded run explains (a run executed twice?)"))
