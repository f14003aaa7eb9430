"""Waves (issue 14): N INTERVAL tasks every 20 s, created back to back at ~120 a second, two Procfile workers.

On a private redis-server and a fresh database (temp SQLite file, or a private schema in --postgres-url), the
Procfile's scheduler and two Procfile workers are started and waited for; then N tasks (INTERVAL
--interval seconds, job noop, notify NEVER, no retries) are created one by one through the API's own path
(`services.create_task` in a `unit_of_work()`: validation, the row, the audit event, the commit, then the pending
occurrence in Redis), paced at --rate a second. An INTERVAL task's first occurrence is one interval after its
creation, so every interval brings a wave of N occurrences due within N / rate seconds (~4.2 s for 500 at 120/s).

Measured over the window W = [F, F + --window) where F is the earliest first occurrence:
  expected   = the occurrences of the tasks' schedules due in W (each task's first occurrence, read from Redis
               right after its creation, then every interval), 3 per task for a 60 s window and 20 s interval;
  happened   = those that ran (SUCCESS or FAILED, attempt 1) once the engine has had --drain seconds past W to
               finish them (and, separately, how many had started by the end of W); occurrences recorded
               SKIPPED (the overlap policy: the previous one still queued or running) did not happen, and are
               counted apart, as are expected ones with no row at all (missing);
  start lag  = started_at - scheduled_for of the runs that happened (p50, p99, max);
  dispatched = the job's enqueued_at (RQ) - scheduled_for (the scheduler's share of the lag).
There is no baseline process for this one: the goal (start-lag p99 below 1 s, every expected run happened) is
absolute; the load average is recorded per run.

Usage (from the repo root):  .venv/bin/python bench/waves.py --tasks 500 --repeat 3
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import log  # noqa: E402

RAN = ("SUCCESS", "FAILED")  # a run's final statuses (no retries: max_retries 0)


def create_paced(count: int, interval_seconds: int, rate: float) -> list[tuple[int, Any]]:
    """Create `count` tasks through the API's use-case at `rate` a second; (task id, first occurrence) each."""
    from chime import occurrence as occ
    from chime import services
    from chime.extensions import db, get_redis
    from chime.unit_of_work import unit_of_work

    created = []
    started = time.monotonic()
    for i in range(count):
        common_wait = started + i / rate - time.monotonic()
        if common_wait > 0:
            time.sleep(common_wait)
        with unit_of_work():
            task = services.create_task({"name": f"wave-{i}", "job": "noop", "schedule_type": "INTERVAL",
                                         "interval_seconds": interval_seconds, "notify": "NEVER",
                                         "max_retries": 0}, allow_shell=False)
        task_id = task.id
        db.session.rollback()
        created.append(task_id)
    took = time.monotonic() - started
    connection = get_redis()
    firsts = []
    for task_id in created:
        job_id = occ.pending_job_id(connection, task_id)
        due = occ.parse_job_id(job_id) if job_id else None
        firsts.append((task_id, due.scheduled_for if due else None))
    log(f"created {count} tasks in {took:.2f} s ({count / took:.0f}/s)")
    return firsts


def expected_occurrences(firsts: list[tuple[int, Any]], interval_seconds: int, start: Any, end: Any) -> set[tuple[int, Any]]:
    out = set()
    for task_id, first in firsts:
        at = first
        while at is not None and at < end:
            if at >= start:
                out.add((task_id, at))
            at = at + timedelta(seconds=interval_seconds)
    return out


def waves_run(args: argparse.Namespace, database_url: str | None) -> dict[str, Any]:
    from sqlalchemy import select

    from chime.extensions import db
    from chime.models import Execution

    with common.Env(database_url) as env:
        for name in ("scheduler", "worker1", "worker2"):
            env.procs.start(name, common.procfile_command("scheduler" if name == "scheduler" else "worker"))
        env.wait_engine_ready(workers=2, schedulers=1)
        load_at_start = os.getloadavg()[0]
        firsts = create_paced(args.tasks, args.interval, args.rate)
        start = min(first for _, first in firsts if first is not None)
        end = start + timedelta(seconds=args.window)
        expected = expected_occurrences(firsts, args.interval, start, end)
        common.sleep_until(end.timestamp() + args.drain)
        load_at_end = os.getloadavg()[0]
        rows = db.session.execute(
            select(Execution.task_id, Execution.scheduled_for, Execution.attempt, Execution.status,
                   Execution.started_at, Execution.finished_at, Execution.job_id)
            .where(Execution.scheduled_for >= start, Execution.scheduled_for < end, Execution.attempt == 1)).all()
        db.session.remove()
        for name in ("scheduler", "worker1", "worker2"):
            env.procs.stop(name)
        recorded = {(r.task_id, r.scheduled_for): r for r in rows}
        happened = {key: r for key, r in recorded.items()
                    if key in expected and r.finished_at is not None and str(r.status) in RAN}
        started_in_window = [r for r in happened.values() if r.started_at is not None and r.started_at < end]
        lags = sorted((r.started_at - r.scheduled_for).total_seconds() for r in happened.values()
                      if r.started_at is not None)
        enqueued = common.job_fields(env.redis, [r.job_id for r in happened.values() if r.job_id], "enqueued_at")
        dispatch = sorted(common.parse_rq_time(fields[0]) - r.scheduled_for.timestamp()
                          for r in happened.values() if r.job_id and (fields := enqueued.get(r.job_id)) and fields[0])
    return {"expected": len(expected), "happened": len(happened), "started_within_window": len(started_in_window),
            "missing": len(expected - set(recorded)),
            "recorded_by_status": dict(Counter(str(r.status) for key, r in recorded.items() if key in expected)),
            "unexpected_rows": len(set(recorded) - expected),
            "start_lag_ms": common.summary_ms(lags), "dispatch_lag_ms": common.summary_ms(dispatch),
            "load_at_start": round(load_at_start, 2), "load_at_end": round(load_at_end, 2)}


def summarise(items: list[dict[str, Any]]) -> dict[str, Any]:
    def med(values: list[Any]) -> float | None:
        values = [v for v in values if v is not None]
        return round(common.median(values), 1) if values else None

    return {"start_lag_p50_ms": med([r["start_lag_ms"]["p50"] for r in items]),
            "start_lag_p99_ms": med([r["start_lag_ms"]["p99"] for r in items]),
            "start_lag_p99_runs_ms": [r["start_lag_ms"]["p99"] for r in items],
            "dispatch_lag_p99_ms": med([r["dispatch_lag_ms"]["p99"] for r in items]),
            "expected": [r["expected"] for r in items], "happened": [r["happened"] for r in items],
            "started_within_window": [r["started_within_window"] for r in items],
            "goal_p99_below_1s_met": (med([r["start_lag_ms"]["p99"] for r in items]) or 1e9) < 1000,
            "goal_every_expected_run_happened": all(r["happened"] == r["expected"] for r in items),
            "load": [(r["load_at_start"], r["load_at_end"]) for r in items]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--interval", type=int, default=20, help="the tasks' interval_seconds")
    parser.add_argument("--rate", type=float, default=120.0, help="tasks created per second")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured from the first occurrence")
    parser.add_argument("--drain", type=float, default=15.0, help="seconds past the window for runs to finish")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres-url", default=common.DEFAULT_POSTGRES_URL, help="'' to skip Postgres")
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    started_version = common.code_version()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    variants = (["sqlite"] if args.sqlite else []) + (["postgres"] if args.postgres_url else [])
    urls = {"sqlite": None, "postgres": args.postgres_url}
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for repeat in range(args.repeat):
        for variant in variants:  # interleaved
            run = waves_run(args, urls[variant])
            runs[variant].append(run)
            log(f"run {repeat + 1} {variant}: happened {run['happened']}/{run['expected']} "
                f"(started in window {run['started_within_window']}), start lag p50 {run['start_lag_ms']['p50']} ms "
                f"p99 {run['start_lag_ms']['p99']} ms, dispatch p99 {run['dispatch_lag_ms']['p99']} ms, "
                f"load {run['load_at_start']}-{run['load_at_end']}")
    summary = {variant: summarise(items) for variant, items in runs.items() if items}
    print(f"\nWaves: {args.tasks} INTERVAL tasks every {args.interval} s created at {args.rate}/s, 2 workers, "
          f"median of {args.repeat}")
    common.print_table(["variant", "start lag p50 ms", "p99 ms", "dispatch p99 ms", "happened / expected"],
                       [[v, s["start_lag_p50_ms"], s["start_lag_p99_ms"], s["dispatch_lag_p99_ms"],
                         f"{s['happened']} / {s['expected']}"] for v, s in summary.items()])
    common.write_results("waves", {"command": "bench/waves.py " + " ".join(sys.argv[1:]), "parameters": vars(args),
                                   "summary": summary, "runs": runs}, started_version)


if __name__ == "__main__":
    main()
