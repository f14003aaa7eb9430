"""Read the engine's record after a chaos run, and explain each finding with the faults and log lines near it."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from tests.chaos.audit import RECOVERED, Audit, Finding, Run, groups_of
from chime.occurrence import parse_job_id
from tests.chaos.faults import Event, near
from chime.extensions import db
from chime.models import Execution, Notification

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")
LOG_WINDOW = timedelta(seconds=20)
MAX_LOG_LINES = 14
SHOWN_FINDINGS = 40


def read_runs() -> list[Run]:
    rows = db.session.execute(select(
        Execution.id, Execution.task_id, Execution.scheduled_for, Execution.attempt, Execution.status,
        Execution.trigger, Execution.message, Execution.started_at, Execution.finished_at, Execution.retry_at,
        Execution.worker).where(Execution.task_id.is_not(None)).order_by(Execution.id)).all()
    db.session.rollback()
    return [Run(*row) for row in rows]


def read_recovered() -> dict[tuple[int, datetime], int]:
    """(task, occurrence) -> N, from the dispatcher's "recovered" notifications of coalesced runs."""
    rows = db.session.execute(select(Notification.task_id, Notification.message)
                              .where(Notification.title.like("%recovered"))).all()
    db.session.rollback()
    found = {}
    for task_id, message in rows:
        match = RECOVERED.search(message or "")
        if match and task_id is not None:
            found[(task_id, datetime.fromisoformat(match.group(1) + match.group(2)).astimezone(timezone.utc))] = int(match.group(3))
    return found


DROPPED = re.compile(r"Dropping job (chime-\S+): task \d+ is disabled")


def dropped_occurrences(lines: list[tuple[datetime, str, str]]) -> frozenset[tuple[int, datetime]]:
    """(task, occurrence) of every job a worker dropped because its task was disabled."""
    found = set()
    for _, _, line in lines:
        match = DROPPED.search(line)
        due = parse_job_id(match.group(1)) if match else None
        if due is not None:
            found.add((due.task_id, due.scheduled_for))
    return frozenset(found)


def log_lines(log_dir: Path) -> list[tuple[datetime, str, str]]:
    """Every timestamped line of every process log: (time, process, line)."""
    lines = []
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            match = LOG_TIME.match(line)
            if match:
                local = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").astimezone()
                at = local.astimezone(timezone.utc) + timedelta(milliseconds=int(match.group(2)))
                lines.append((at, path.stem, line))
    return sorted(lines)


def lines_about(lines: list[tuple[datetime, str, str]], task_id: int, at: datetime) -> list[str]:
    marks = (f"task={task_id} ", f"chime-{task_id}-", f"task {task_id} ", f"task {task_id}:")
    found = [f"[{proc}] {line}" for when, proc, line in lines
             if abs(when - at) <= LOG_WINDOW and any(m in line for m in marks)]
    global_marks = ("Reconcile pass", "took", "cannot reach", "pass failed", "stale", "restored")
    found += [f"[{proc}] {line}" for when, proc, line in lines
              if abs(when - at) <= LOG_WINDOW / 2 and any(m in line for m in global_marks)
              and f"[{proc}] {line}" not in found]
    return found[:MAX_LOG_LINES]


def explain(finding: Finding, runs: list[Run], recovered: dict, events: list[Event],
            lines: list[tuple[datetime, str, str]]) -> str:
    task = finding.task
    changes = "; ".join(f"{c.before.time()}..{c.after.time()} {c.what}" for c in task.changes)
    nearby = [g for g in groups_of([r for r in runs if r.task_id == task.task_id], recovered,
                                   task.schedule_type == "ONE_TIME")
              if abs(g.scheduled_for - finding.at) <= timedelta(seconds=30)]
    out = [f"{finding.kind.upper()} task {task.task_id} {task.name} ({task.schedule_type}) at "
           f"{finding.at.isoformat()}: {finding.detail}", f"    changes: {changes}"]
    out += ["    recorded nearby: " + g.describe() for g in nearby] or ["    recorded nearby: nothing within 30 s"]
    out += ["    fault: " + e.describe() for e in near(events, finding.at)] or ["    fault: none within -40 s..+20 s"]
    out += ["    log: " + line for line in lines_about(lines, task.task_id, finding.at)]
    return "\n".join(out)


def figures(seed: int, database: str, seconds: float, faults: int, result: Audit) -> str:
    return (f"chaos: seed={seed} db={database} seconds={seconds:g} faults={faults} expected={result.expected} "
            f"lost={result.count('lost')} doubled={result.count('doubled')} stuck={result.count('stuck')} "
            f"side_effect_mismatch={result.count('side_effect')} unexpected={result.count('unexpected')} "
            f"false_skip={result.count('false_skip')} "
            f"assumed_coalesced={result.count('assumed')} dropped_by_disable={result.count('dropped')}")


def details(result: Audit, runs: list[Run], recovered: dict, events: list[Event],
            lines: list[tuple[datetime, str, str]]) -> str:
    order = ("lost", "doubled", "stuck", "unexpected", "false_skip", "side_effect", "assumed", "dropped")
    findings = sorted(result.findings, key=lambda f: (order.index(f.kind), f.at))
    shown = [explain(f, runs, recovered, events, lines) for f in findings[:SHOWN_FINDINGS]]
    if len(findings) > SHOWN_FINDINGS:
        shown.append(f"... and {len(findings) - SHOWN_FINDINGS} more finding(s)")
    timeline = ["all faults:"] + ["    " + e.describe() for e in sorted(events, key=lambda e: e.start)]
    return "\n".join(shown + timeline)
