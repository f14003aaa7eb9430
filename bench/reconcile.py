"""Reconcile: seconds for one scheduler.reconcile.reconcile pass over many tasks, vs the I/O floor.

Tasks (all enabled, noop): one third INTERVAL (60..3600 s, anchored at creation), one third CRON
(a few expressions and time zones), one third ONE_TIME (run_at in the future); every task has its
pending occurrence in Redis (bulk insert + pipelined pending, see common.bulk_create_tasks).

(a) in place:     a pass with everything in place (nothing to restore).
(b) after FLUSHALL: a pass that must restore every pending occurrence.
Baselines, in the same run and on the same data:
  floor (a): a bare SELECT of all task rows (SQLAlchemy core) + the Redis reads of the same keys
             the pass reads (ZRANGE WITHSCORES of the scheduled set, HGETALL of the pending index,
             LRANGE of the queues, HMGET created_at/origin of every pending job), pipelined.
  floor (b): the same SELECT + writing back exactly what pass (b) restored (every job hash, the
             sorted set and the pending index, captured after the pass) in pipelined batches.

The CPU seconds of this process during each pass (the pass's own Python work, not Redis's or the
database server's) are recorded too: on a busy machine they say what wall seconds cannot.
FLUSHALL goes through a client without a read timeout (on a busy machine it can take seconds).

Usage (from the repo root):  .venv/bin/python bench/reconcile.py --tasks 100000
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import log  # noqa: E402

CRONS = [("*/5 * * * *", "UTC"), ("0 * * * *", "Europe/Paris"), ("30 2 * * 1-5", "America/New_York"),
         ("15 */6 * * *", "Asia/Tokyo")]
CHUNK = 5000


def mixed_rows(count: int, now: Any) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        kind = i % 3
        row: dict[str, Any] = {"name": f"rec-{i}"}
        if kind == 0:
            row.update(schedule_type="INTERVAL", interval_seconds=60 + (i * 7) % 3541)
        elif kind == 1:
            cron, zone = CRONS[i % len(CRONS)]
            row.update(schedule_type="CRON", cron=cron, timezone=zone)
        else:
            row.update(schedule_type="ONE_TIME", run_at=now + timedelta(days=1, seconds=i))
        rows.append(row)
    return rows


def floor_read(env: common.Env) -> float:
    from sqlalchemy import select

    from chime import occurrence as occ
    from chime.models import Task

    started = time.perf_counter()
    with env.db.engine.connect() as connection:
        rows = connection.execute(select(Task.__table__)).fetchall()
    connection_ = env.redis
    with connection_.pipeline(transaction=False) as pipe:
        pipe.zrange(occ.SCHEDULED_KEY, 0, -1, withscores=True)
        pipe.hgetall(occ.PENDING_KEY)
        for name in common.QUEUES:
            pipe.lrange(f"rq:queue:{name}", 0, -1)
        scheduled, pending, *_ = pipe.execute()
    wanted = [v.decode() for v in pending.values()]
    for start in range(0, len(wanted), CHUNK):
        with connection_.pipeline(transaction=False) as pipe:
            for job_id in wanted[start:start + CHUNK]:
                pipe.hmget(occ.JOB_KEY.format(job_id=job_id), "created_at", "origin")
            pipe.execute()
    elapsed = time.perf_counter() - started
    assert len(rows) and len(scheduled) >= 0
    return elapsed


def capture_state(env: common.Env) -> dict[str, Any]:
    from chime import occurrence as occ

    scheduled = env.redis.zrange(occ.SCHEDULED_KEY, 0, -1, withscores=True)
    pending = env.redis.hgetall(occ.PENDING_KEY)
    hashes: dict[bytes, dict[bytes, bytes]] = {}
    ids = [job_id for job_id, _ in scheduled]
    for start in range(0, len(ids), CHUNK):
        with env.redis.pipeline(transaction=False) as pipe:
            for job_id in ids[start:start + CHUNK]:
                pipe.hgetall(b"rq:job:" + job_id)
            for job_id, fields in zip(ids[start:start + CHUNK], pipe.execute()):
                hashes[job_id] = fields
    return {"scheduled": scheduled, "pending": pending, "hashes": hashes}


def floor_write(env: common.Env, state: dict[str, Any]) -> float:
    from sqlalchemy import select

    from chime import occurrence as occ
    from chime.models import Task

    started = time.perf_counter()
    with env.db.engine.connect() as connection:
        connection.execute(select(Task.__table__)).fetchall()
    items = list(state["hashes"].items())
    for start in range(0, len(items), CHUNK):
        with env.redis.pipeline(transaction=False) as pipe:
            for job_id, fields in items[start:start + CHUNK]:
                pipe.hset(b"rq:job:" + job_id, mapping=fields)
            pipe.execute()
    scheduled = state["scheduled"]
    pending = list(state["pending"].items())
    for start in range(0, max(len(scheduled), len(pending)), CHUNK):
        with env.redis.pipeline(transaction=False) as pipe:
            part = scheduled[start:start + CHUNK]
            if part:
                pipe.zadd(occ.SCHEDULED_KEY, dict(part))
            part_pending = pending[start:start + CHUNK]
            if part_pending:
                pipe.hset(occ.PENDING_KEY, mapping=dict(part_pending))
            pipe.execute()
    return time.perf_counter() - started


def flushall(env: common.Env) -> None:
    import redis

    client = redis.Redis.from_url(env.redis_server.url, socket_timeout=None)
    try:
        client.flushall()
    finally:
        client.close()


def timed_pass(env: common.Env) -> tuple[float, float, dict[str, Any]]:
    """(wall seconds, CPU seconds of this process, report) of one reconcile pass."""
    from scheduler.reconcile import reconcile

    env.db.session.remove()
    started, cpu = time.perf_counter(), time.process_time()
    report = reconcile(env.redis, common.utcnow())
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    env.db.session.remove()
    return elapsed, cpu, report


def one_database(args: argparse.Namespace, database_url: str | None) -> dict[str, Any]:
    from chime import occurrence as occ
    from chime.app import freeze_start_up_objects

    load_at_start = [round(x, 2) for x in os.getloadavg()]
    with common.Env(database_url) as env:
        # The pass runs in a worker, which froze what its start-up loaded (chime.app.freeze_start_up_objects):
        # measure it in the same state.
        freeze_start_up_objects()
        now = common.utcnow()
        started = time.monotonic()
        common.bulk_create_tasks(mixed_rows(args.tasks, now), now)
        setup = time.monotonic() - started
        log(f"{env.kind}: {args.tasks} tasks created in {setup:.1f} s")
        total = env.redis.zcard(occ.SCHEDULED_KEY)

        in_place, cpu_a, floor_a, reports_a = [], [], [], []
        for _ in range(args.repeat):
            floor_a.append(floor_read(env))
            elapsed, cpu, report = timed_pass(env)
            in_place.append(elapsed)
            cpu_a.append(cpu)
            reports_a.append(report)
        log(f"{env.kind}: in place {[round(x, 2) for x in in_place]} s, floor {[round(x, 2) for x in floor_a]} s")

        flushed, cpu_b, floor_b, reports_b = [], [], [], []
        for _ in range(args.repeat_flush):
            flushall(env)
            elapsed, cpu, report = timed_pass(env)
            flushed.append(elapsed)
            cpu_b.append(cpu)
            reports_b.append(report)
            restored = env.redis.zcard(occ.SCHEDULED_KEY)
            if restored < total:
                log(f"WARNING: only {restored} of {total} occurrences restored")
            state = capture_state(env)
            flushall(env)
            floor_b.append(floor_write(env, state))
            # leave the restored state in place for the next repetition's FLUSHALL
        log(f"{env.kind}: after FLUSHALL {[round(x, 2) for x in flushed]} s, floor {[round(x, 2) for x in floor_b]} s")
        a, fa, b, fb = (common.median(v) for v in (in_place, floor_a, flushed, floor_b))
        return {
            "database": env.kind, "tasks": args.tasks, "load_average_at_start": load_at_start, "pending_before": total, "setup_seconds": round(setup, 1),
            "in_place_seconds": [round(x, 3) for x in in_place], "in_place_median": round(a, 3),
            "floor_read_seconds": [round(x, 3) for x in floor_a], "floor_read_median": round(fa, 3),
            "in_place_ratio_to_floor": common.ratio(a, fa),
            "in_place_cpu_seconds": [round(x, 3) for x in cpu_a], "in_place_cpu_median": round(common.median(cpu_a), 3),
            "after_flushall_seconds": [round(x, 3) for x in flushed], "after_flushall_median": round(b, 3),
            "floor_write_seconds": [round(x, 3) for x in floor_b], "floor_write_median": round(fb, 3),
            "after_flushall_ratio_to_floor": common.ratio(b, fb),
            "after_flushall_cpu_seconds": [round(x, 3) for x in cpu_b],
            "after_flushall_cpu_median": round(common.median(cpu_b), 3),
            "restored_after_flushall": env.redis.zcard(occ.SCHEDULED_KEY),
            "report_in_place": reports_a[-1], "report_after_flushall": reports_b[-1],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100000)
    parser.add_argument("--repeat", type=int, default=3, help="passes (a), median reported")
    parser.add_argument("--repeat-flush", type=int, default=1, help="passes (b), median reported")
    parser.add_argument("--postgres-url", default=common.DEFAULT_POSTGRES_URL, help="'' to skip Postgres")
    args = parser.parse_args()
    started_version = common.code_version()

    results = [one_database(args, None)]
    if args.postgres_url:
        results.append(one_database(args, args.postgres_url))
    print(f"\nReconcile pass over {args.tasks} tasks (seconds; median)")
    common.print_table(["database", "(a) in place", "floor", "ratio", "(b) after FLUSHALL", "floor", "ratio",
                        "restored"],
                       [[r["database"], r["in_place_median"], r["floor_read_median"], r["in_place_ratio_to_floor"],
                         r["after_flushall_median"], r["floor_write_median"], r["after_flushall_ratio_to_floor"],
                         r["restored_after_flushall"]] for r in results])
    common.write_results("reconcile", {"command": "bench/reconcile.py " + " ".join(sys.argv[1:]),
                                       "parameters": vars(args), "results": results}, started_version)


if __name__ == "__main__":
    main()
