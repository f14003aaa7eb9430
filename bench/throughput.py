"""Throughput: executions per second of ONE worker process, Chime's full bookkeeping vs bare RQ.

chime-sqlite / chime-postgres: N manual runs of one `noop` task (overlap ALLOW, notify ALWAYS) are
pushed with occ.push_now (what services.run_task_now does), then the Procfile worker command is
started with --burst and timed until it exits. Each run writes one Execution row (RUNNING, then
SUCCESS) and one notification, beats the liveness key and clears the in-flight marker.
bare-rq: N jobs of bench.bare.noop enqueued with Queue.enqueue on a fresh redis-server, drained
by a plain `rq worker --burst default` (RQ's default Worker: one fork per job, no Chime code).
bare-rq-simple: the same with `--worker-class rq.SimpleWorker` (no fork; the class ChimeWorker
extends since c1289c7), so the ratio to it isolates Chime's per-execution bookkeeping.

Two rates per run: wall = N / (process start -> exit), which includes start-up (the Chime worker
builds the Flask app); steady = N / (first job started_at -> last job ended_at) from the RQ job
hashes, which excludes start-up. Reported: median of --repeat runs, and ratios to bare RQ.

Usage (from the repo root):  .venv/bin/python bench/throughput.py --jobs 2000
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import log  # noqa: E402


def timed_burst(proc: subprocess.Popen, started: float, timeout: float) -> float:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"worker did not finish within {timeout} s")
    return time.monotonic() - started


def steady_seconds(connection: Any, job_ids: list[str]) -> float | None:
    fields = common.job_fields(connection, job_ids, "started_at", "ended_at")
    starts = [common.parse_rq_time(f[0]) for f in fields.values() if f[0]]
    ends = [common.parse_rq_time(f[1]) for f in fields.values() if f[1]]
    if not starts or not ends:
        return None
    return max(ends) - min(starts)


def chime_run(args: argparse.Namespace, database_url: str | None) -> dict[str, Any]:
    from sqlalchemy import func, select

    from chime import occurrence as occ
    from chime.extensions import db
    from chime.models import Execution, Notification, Task

    with common.Env(database_url) as env:
        now = common.utcnow()
        common.bulk_create_tasks([{"name": "bench-noop", "schedule_type": "INTERVAL", "interval_seconds": 86400,
                                   "start_at": now + timedelta(days=1), "overlap": "ALLOW", "notify": "ALWAYS"}], now)
        task = db.session.get(Task, 1)
        job_ids = []
        for i in range(args.jobs):
            at = now + timedelta(microseconds=i)
            occurrence = occ.Occurrence.of(task, at, trigger="MANUAL")
            job_ids.append(occ.push_now(env.redis, occurrence, at))
        db.session.commit()
        started = time.monotonic()
        proc = env.start_worker("worker", burst=True)
        wall = timed_burst(proc, started, args.timeout)
        env.procs.procs.pop("worker", None)
        db.session.remove()
        succeeded = db.session.scalar(select(func.count()).select_from(Execution).where(Execution.status == "SUCCESS"))
        notified = db.session.scalar(select(func.count()).select_from(Notification))
        if succeeded != args.jobs:
            log(f"WARNING: {succeeded} SUCCESS executions for {args.jobs} jobs\n{env.procs.tail('worker')}")
        steady = steady_seconds(env.redis, job_ids)
        return {"wall_seconds": round(wall, 3), "steady_seconds": round(steady, 3) if steady else None,
                "wall_per_second": round(args.jobs / wall, 1),
                "steady_per_second": round(args.jobs / steady, 1) if steady else None,
                "executions_success": succeeded, "notifications": notified}


def bare_run(args: argparse.Namespace, worker_class: str | None = None) -> dict[str, Any]:
    from rq import Queue

    from bench.bare import noop

    with common.Env(None) as env:
        queue = Queue("default", connection=env.redis)
        job_ids = [queue.enqueue(noop).id for _ in range(args.jobs)]
        started = time.monotonic()
        option = f" --worker-class {worker_class}" if worker_class else ""
        proc = env.procs.start("bare", f"rq worker --burst{option} --url {env.redis_server.url} default")
        wall = timed_burst(proc, started, args.timeout)
        env.procs.procs.pop("bare", None)
        steady = steady_seconds(env.redis, job_ids)
        done = sum(1 for f in common.job_fields(env.redis, job_ids, "status").values() if f[0] == b"finished")
        return {"wall_seconds": round(wall, 3), "steady_seconds": round(steady, 3) if steady else None,
                "wall_per_second": round(args.jobs / wall, 1),
                "steady_per_second": round(args.jobs / steady, 1) if steady else None, "finished": done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000, help="N jobs per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (median reported)")
    parser.add_argument("--postgres-url", default=common.DEFAULT_POSTGRES_URL,
                        help="Postgres for chime-postgres ('' to skip); each run uses a private schema in it")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    started_version = common.code_version()

    variants = ["bare-rq", "bare-rq-simple", "chime-sqlite"] + (["chime-postgres"] if args.postgres_url else [])
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for repeat in range(args.repeat):
        for variant in variants:  # interleaved, so machine noise spreads over all variants
            if variant == "bare-rq":
                run = bare_run(args)
            elif variant == "bare-rq-simple":
                run = bare_run(args, "rq.SimpleWorker")
            else:
                run = chime_run(args, None if variant == "chime-sqlite" else args.postgres_url)
            runs[variant].append(run)
            log(f"run {repeat + 1} {variant}: {run}")

    summary = {}
    for variant, items in runs.items():
        summary[variant] = {
            "wall_per_second_median": common.median([r["wall_per_second"] for r in items]),
            "steady_per_second_median": common.median([r["steady_per_second"] for r in items
                                                       if r["steady_per_second"]]),
        }
    bare, simple = summary["bare-rq"], summary["bare-rq-simple"]
    for variant, values in summary.items():
        values["wall_ratio_to_bare_rq"] = common.ratio(values["wall_per_second_median"], bare["wall_per_second_median"])
        values["steady_ratio_to_bare_rq"] = common.ratio(values["steady_per_second_median"],
                                                         bare["steady_per_second_median"])
        values["wall_ratio_to_bare_rq_simple"] = common.ratio(values["wall_per_second_median"],
                                                              simple["wall_per_second_median"])
    print(f"\nThroughput, one worker, {args.jobs} no-op jobs, median of {args.repeat} (executions/s)")
    common.print_table(["variant", "wall/s", "ratio to bare-rq", "ratio to bare-rq-simple", "steady/s", "ratio"],
                       [[v, s["wall_per_second_median"], s["wall_ratio_to_bare_rq"], s["wall_ratio_to_bare_rq_simple"],
                         s["steady_per_second_median"], s["steady_ratio_to_bare_rq"]] for v, s in summary.items()])
    common.write_results("throughput", {
        "command": "bench/throughput.py " + " ".join(sys.argv[1:]),
        "parameters": vars(args), "summary": summary, "runs": runs,
    }, started_version)


if __name__ == "__main__":
    main()
