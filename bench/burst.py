"""Burst: N occurrences due in the same instant T, no workers: how long until all are on a queue.

chime: N INTERVAL tasks (interval 3600 s, noop, overlap SKIP) whose pending occurrence is T, a few
seconds ahead; the Procfile scheduler process is running; we poll LLEN rq:queue:default every ~2 ms.
rq-scheduler: N jobs added with Scheduler.enqueue_at (then re-scored to T in one pipelined ZADD, see
common.rq_scheduler_jobs) and the plain `rqscheduler --interval 1`.

Per run: time from T to the first job on the queue, to all N on the queue, and first -> all (the
pure moving rate, independent of when the scheduler noticed T). Median of --repeat runs each.

Usage (from the repo root):  .venv/bin/python bench/burst.py --tasks 10000
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import log  # noqa: E402

QUEUE_KEY = "rq:queue:default"


def watch_queue(connection: Any, due_at: float, expected: int, timeout: float) -> dict[str, Any]:
    """Poll LLEN until `expected` jobs are queued; return the times relative to due_at."""
    first = None
    samples: list[tuple[float, int]] = []
    deadline = due_at + timeout
    while time.time() < deadline:
        length = connection.llen(QUEUE_KEY)
        now = time.time()
        if length and first is None:
            first = now
        if not samples or samples[-1][1] != length:
            samples.append((round(now - due_at, 4), length))
        if length >= expected:
            return {"first_s": round(first - due_at, 4), "all_s": round(now - due_at, 4),
                    "first_to_all_s": round(now - first, 4), "queued": length, "steps": samples[:50]}
        time.sleep(0.002)
    return {"first_s": None if first is None else round(first - due_at, 4), "all_s": None,
            "first_to_all_s": None, "queued": connection.llen(QUEUE_KEY), "steps": samples[:50]}


def chime_run(args: argparse.Namespace) -> dict[str, Any]:
    with common.Env(args.database_url) as env:
        due_at = math.ceil(time.time()) + args.lead
        due_dt = common.epoch_to_dt(due_at)
        rows = [{"name": f"burst-{i}", "schedule_type": "INTERVAL", "interval_seconds": 3600, "start_at": due_dt}
                for i in range(args.tasks)]
        occurrences = common.bulk_create_tasks(rows, common.utcnow())
        assert all(o.scheduled_for == due_dt for o in occurrences)
        env.start_scheduler()
        env.wait_engine_ready(workers=0, schedulers=1)
        if time.time() > due_at - 0.5:
            log("WARNING: scheduler ready less than 0.5 s before T; raise --lead")
        common.sleep_until(due_at - 0.2)
        result = watch_queue(env.redis, due_at, args.tasks, args.timeout)
        ids = [o.job_id for o in occurrences]
        passes = {f[0] for f in common.job_fields(env.redis, ids, "enqueued_at").values() if f[0]}
        result["dispatch_passes"] = len(passes)
        env.procs.stop("scheduler")
        return result


def rq_scheduler_run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.bare import noop

    with common.Env(args.database_url) as env:
        job_ids = common.rq_scheduler_jobs(env.redis, args.tasks, noop)
        due_at = math.ceil(time.time()) + args.lead
        common.rescore(env.redis, {job_id: due_at for job_id in job_ids})
        env.procs.start("rqscheduler", f"rqscheduler --url {env.redis_server.url} --interval 1")
        common.wait_for(lambda: env.redis.keys("rq:scheduler_instance:*"), 30, "rqscheduler to start")
        if time.time() > due_at - 0.5:
            log("WARNING: rqscheduler ready less than 0.5 s before T; raise --lead")
        common.sleep_until(due_at - 0.2)
        result = watch_queue(env.redis, due_at, args.tasks, args.timeout)
        env.procs.stop("rqscheduler")
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lead", type=float, default=8.0, help="seconds from setup to T")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up this long after T")
    parser.add_argument("--database-url", default=None, help="default: a temp SQLite file")
    parser.add_argument("--variants", nargs="+", default=["chime", "rq-scheduler"],
                        choices=["chime", "rq-scheduler"], help="default: both")
    args = parser.parse_args()
    started_version = common.code_version()

    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in args.variants}
    for repeat in range(args.repeat):
        for variant in runs:
            run = chime_run(args) if variant == "chime" else rq_scheduler_run(args)
            runs[variant].append(run)
            log(f"run {repeat + 1} {variant}: { {k: v for k, v in run.items() if k != 'steps'} }")

    def med(variant: str, key: str) -> float | None:
        values = [r[key] for r in runs[variant] if r[key] is not None]
        return round(common.median(values), 3) if len(values) == len(runs[variant]) else None

    keys = ("first_s", "all_s", "first_to_all_s")
    summary: dict[str, Any] = {v: {k: med(v, k) for k in keys} for v in runs}
    both = {"chime", "rq-scheduler"} <= set(runs)
    if both:
        summary["ratio_chime_over_rq_scheduler"] = {k: common.ratio(summary["chime"][k], summary["rq-scheduler"][k])
                                                    for k in keys}
    if "chime" in runs:
        summary["goal_all_within_2s_met"] = summary["chime"]["all_s"] is not None and summary["chime"]["all_s"] <= 2.0
    print(f"\nBurst: {args.tasks} occurrences due at T, median of {args.repeat} (seconds after T)")
    common.print_table(["variant", "first on queue", "all on queue", "first->all"],
                       [[v, summary[v]["first_s"], summary[v]["all_s"], summary[v]["first_to_all_s"]] for v in runs] +
                       ([["ratio chime/rq", *summary["ratio_chime_over_rq_scheduler"].values()]] if both else []))
    if "chime" in runs:
        print(f"goal (all within 2 s) met: {summary['goal_all_within_2s_met']}")
    common.write_results("burst", {"command": "bench/burst.py " + " ".join(sys.argv[1:]),
                                   "parameters": vars(args), "summary": summary, "runs": runs}, started_version)


if __name__ == "__main__":
    main()
