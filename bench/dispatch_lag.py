"""Dispatch lag: how late occurrences reach a queue (scheduler) and a worker (end to end).

Load: N enabled INTERVAL tasks (noop, overlap SKIP, notify ALWAYS) with interval I seconds whose
fire times are spread evenly over one interval, so N/I occurrences fall due per second, each at
its own microsecond instant. The benchmark watches a window of W seconds starting at T0.

Three runs per N, each against its own fresh redis-server and database:
  chime+workers   the Procfile scheduler + K Procfile workers. Per execution: end-to-end lag =
                  Execution.started_at - scheduled_for; scheduler side = the job hash's enqueued_at
                  (the instant of the move script) - scheduled_for; worker queueing = started_at - enqueued_at.
  chime+recorder  the Procfile scheduler, no workers: a recorder pops each job as it lands on a
                  queue and timestamps it, so dispatch lag = time on queue - scheduled_for, measured
                  from outside and free of worker CPU contention.
  rq-scheduler    the baseline: plain `rqscheduler --interval 1` (rq_scheduler.Scheduler's default
                  loop), the same due times added with Scheduler.enqueue_at (re-scored in one ZADD,
                  see common.rq_scheduler_jobs), the same recorder.

Usage (from the repo root):  .venv/bin/python bench/dispatch_lag.py --tasks 1000 10000
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


def chime_run(args: argparse.Namespace, tasks: int, mode: str) -> dict[str, Any]:
    from sqlalchemy import select

    from chime.extensions import db
    from chime.models import Execution

    with common.Env(args.database_url, redis_hz=args.redis_hz) as env:
        t0 = math.ceil(time.time()) + (args.lead if args.lead is not None else 10 + tasks * 0.0008)
        t0_dt = common.epoch_to_dt(t0)
        rows = common.interval_rows(tasks, t0_dt, args.interval, args.interval)
        started = time.monotonic()
        occurrences = common.bulk_create_tasks(rows, common.utcnow())
        log(f"{tasks} tasks created in {time.monotonic() - started:.1f} s (bulk insert + pipelined pending)")
        window_end = t0 + args.window
        due = {o.job_id: o.scheduled_for.timestamp() for o in occurrences if o.scheduled_for.timestamp() < window_end}
        recorder = None
        workers = args.workers if mode == "workers" else 0
        if mode == "recorder":
            recorder = common.Recorder(env.redis_server.url, mark_finished=True).start()
        for index in range(workers):
            env.start_worker(f"worker{index + 1}")
        env.start_scheduler()
        env.wait_engine_ready(workers=workers, schedulers=1)
        ready_at = time.time()
        if ready_at > t0:
            log(f"WARNING: engine ready {ready_at - t0:.1f} s after T0; raise --lead")
        common.sleep_until(t0)
        cpu_before = {name: common.cpu_seconds(p.pid) for name, p in env.procs.procs.items()}
        common.sleep_until(window_end + args.tail)
        cpu_after = {name: common.cpu_seconds(p.pid) for name, p in env.procs.procs.items()}
        stop_at = time.time()
        seen = recorder.stop() if recorder else {}
        env.procs.stop("scheduler")
        for index in range(workers):
            env.procs.stop(f"worker{index + 1}")
        fields = common.job_fields(env.redis, list(due), "enqueued_at", "status")
        enqueued = {j: common.parse_rq_time(f[0]) for j, f in fields.items()}
        enqueued_lag = [enqueued[j] - s for j, s in due.items() if enqueued.get(j) is not None]
        result: dict[str, Any] = {
            "variant": f"chime+{mode}", "tasks": tasks, "due_in_window": len(due),
            "enqueued_lag_ms": common.summary_ms(enqueued_lag),
            "cpu_seconds_in_window": {n: round((cpu_after[n] or 0) - (cpu_before[n] or 0), 2) for n in cpu_after},
            "window_seconds": args.window + args.tail,
        }
        if mode == "recorder":
            queued_lag = [seen[j] - s for j, s in due.items() if j in seen]
            result["dispatch_lag_ms"] = common.summary_ms(queued_lag)
            result["not_dispatched"] = len(due) - len(queued_lag)
            move_to_queue = [seen[j] - enqueued[j] for j in due if j in seen and enqueued.get(j) is not None]
            result["enqueued_to_on_queue_ms"] = common.summary_ms(move_to_queue)
            passes: dict[float, list[str]] = {}
            for job_id in due:
                if job_id in seen and enqueued.get(job_id) is not None:
                    passes.setdefault(enqueued[job_id], []).append(job_id)
            result["dispatch_passes"] = len(passes)
            # The slowest passes: when they moved (s after T0), how many jobs, move -> first on the queue.
            slowest = sorted(((min(seen[j] for j in ids) - start, start, len(ids)) for start, ids in passes.items()),
                             reverse=True)[:5]
            result["slowest_passes"] = [{"at_s": round(start - t0, 3), "jobs": n, "seconds": round(d, 3)}
                                        for d, start, n in slowest]
            after_warmup = [seen[j] - s for j, s in due.items() if j in seen and s >= t0 + args.warmup]
            result[f"dispatch_lag_ms_after_first_{args.warmup:g}s"] = common.summary_ms(after_warmup)
        else:
            window_start = t0_dt
            window_stop = common.epoch_to_dt(window_end)
            db.session.remove()
            executions = db.session.execute(
                select(Execution.job_id, Execution.scheduled_for, Execution.started_at, Execution.status)
                .where(Execution.trigger == "SCHEDULE", Execution.attempt == 1,
                       Execution.scheduled_for >= window_start, Execution.scheduled_for < window_stop)).all()
            by_job = {e.job_id: e for e in executions}
            started_lag = [(e.started_at - e.scheduled_for).total_seconds() for e in executions
                           if e.status != "SKIPPED"]
            queue_wait = [e.started_at.timestamp() - enqueued[e.job_id] for e in executions
                          if e.status != "SKIPPED" and enqueued.get(e.job_id) is not None]
            never_started = [j for j in due if j not in by_job]
            # Occurrences that never started count with the lag they had reached at stop time: a lower
            # bound, so the percentiles below are lower bounds whenever never_started > 0.
            censored = started_lag + [stop_at - due[j] for j in never_started]
            statuses: dict[str, int] = {}
            for e in executions:
                statuses[e.status] = statuses.get(e.status, 0) + 1
            result.update({
                "workers": workers,
                "end_to_end_lag_ms_started_only": common.summary_ms(started_lag),
                "end_to_end_lag_ms_all_due_lower_bound": common.summary_ms(censored),
                "worker_queue_wait_ms": common.summary_ms(queue_wait),
                "executions_by_status": statuses,
                "never_started": len(never_started),
                "executions_per_second_in_window": round(len(started_lag) / (args.window + args.tail), 1),
            })
        return result


def rq_scheduler_run(args: argparse.Namespace, tasks: int) -> dict[str, Any]:
    from bench.bare import noop

    with common.Env(args.database_url, redis_hz=args.redis_hz) as env:
        started = time.monotonic()
        job_ids = common.rq_scheduler_jobs(env.redis, tasks, noop)
        log(f"{tasks} rq-scheduler jobs added with enqueue_at in {time.monotonic() - started:.1f} s")
        t0 = math.ceil(time.time()) + 6
        step = args.interval / tasks
        intended = {job_id: t0 + i * step for i, job_id in enumerate(job_ids)}
        common.rescore(env.redis, intended)
        recorder = common.Recorder(env.redis_server.url, mark_finished=False).start()
        env.procs.start("rqscheduler", f"rqscheduler --url {env.redis_server.url} --interval 1")
        window_end = t0 + args.window
        if time.time() > t0:
            log("WARNING: setup ran past T0; raise --lead")
        common.sleep_until(t0)
        cpu_before = common.cpu_seconds(env.procs.procs["rqscheduler"].pid)
        common.sleep_until(window_end + args.tail)
        cpu_after = common.cpu_seconds(env.procs.procs["rqscheduler"].pid)
        seen = recorder.stop()
        env.procs.stop("rqscheduler")
        due = {j: s for j, s in intended.items() if s < window_end}
        lag = [seen[j] - s for j, s in due.items() if j in seen]
        # rq-scheduler stores whole-second scores (calendar.timegm), so it may push up to 1 s early;
        # measured against its own truncated due second the lag is never negative.
        lag_vs_score = [seen[j] - math.floor(s) for j, s in due.items() if j in seen]
        fields = common.job_fields(env.redis, list(due), "enqueued_at")
        enqueue_lag = [common.parse_rq_time(f[0]) - due[j] for j, f in fields.items() if f[0]]
        return {
            "variant": "rq-scheduler", "tasks": tasks, "due_in_window": len(due),
            "dispatch_lag_ms": common.summary_ms(lag),
            "dispatch_lag_vs_whole_second_score_ms": common.summary_ms(lag_vs_score),
            "pushed_early": sum(1 for v in lag if v < 0),
            "abs_timing_error_ms": common.summary_ms(abs(v) for v in lag),
            "enqueued_at_lag_ms": common.summary_ms(enqueue_lag),
            "not_dispatched": len(due) - len(lag),
            "cpu_seconds_in_window": {"rqscheduler": round((cpu_after or 0) - (cpu_before or 0), 2)},
            "window_seconds": args.window + args.tail,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000], help="N (several allowed)")
    parser.add_argument("--interval", type=int, default=60, help="task interval, s (load = N/interval per s)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of fires observed from T0")
    parser.add_argument("--lead", type=float, default=None,
                        help="seconds from setup to T0 (task creation + engine start-up); default 10 + 0.8 ms * N")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of the recorder and rq-scheduler variants (medians of their p99 compared)")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="also report dispatch lag without the first seconds of the window")
    parser.add_argument("--tail", type=float, default=2.0, help="seconds observed after the window")
    parser.add_argument("--workers", type=int, default=2, help="K Procfile workers in the chime+workers run")
    parser.add_argument("--variants", nargs="+", default=["workers", "recorder", "rq-scheduler"],
                        choices=["workers", "recorder", "rq-scheduler"])
    parser.add_argument("--database-url", default=None, help="default: a temp SQLite file")
    parser.add_argument("--redis-hz", type=int, default=None,
                        help="diagnostic: CONFIG SET hz on the private redis-server (default: its own, 10)")
    parser.add_argument("--output", default="dispatch_lag", help="results file name (bench/results/<output>.json)")
    args = parser.parse_args()
    started_version = common.code_version()

    runs: list[dict[str, Any]] = []
    for tasks in args.tasks:
        for repeat in range(args.repeat):
            for variant in args.variants:
                if variant == "workers" and repeat > 0:
                    continue  # its figures are set by worker capacity, far above run-to-run noise
                log(f"N={tasks} variant={variant} run {repeat + 1}: load {tasks / args.interval:.1f} occurrences/s")
                run = rq_scheduler_run(args, tasks) if variant == "rq-scheduler" else chime_run(args, tasks, variant)
                run["run"] = repeat + 1
                runs.append(run)
                log(f"  {run}")

    rows = []
    comparisons = []
    metrics = ("dispatch_lag_ms", "abs_timing_error_ms", "enqueued_lag_ms", "worker_queue_wait_ms",
               "end_to_end_lag_ms_started_only", "end_to_end_lag_ms_all_due_lower_bound")
    for tasks in args.tasks:
        for run in (r for r in runs if r["tasks"] == tasks):
            for metric in metrics:
                if metric in run and run[metric]["n"]:
                    m = run[metric]
                    rows.append([tasks, run["variant"], run["run"], metric.replace("_ms", ""), m["n"], m["p50"],
                                 m["p90"], m["p99"], m["max"]])

        def median_of(variant: str, metric: str, key: str = "p99") -> float | None:
            values = [r[metric][key] for r in runs if r["tasks"] == tasks and r["variant"] == variant
                      and metric in r and r[metric][key] is not None]
            return round(common.median(values), 1) if values else None

        ours = median_of("chime+recorder", "dispatch_lag_ms")
        base = median_of("rq-scheduler", "dispatch_lag_ms")
        base_abs = median_of("rq-scheduler", "abs_timing_error_ms")
        comparisons.append({"tasks": tasks, "runs_per_variant": args.repeat,
                            "chime_dispatch_p50_ms": median_of("chime+recorder", "dispatch_lag_ms", "p50"),
                            "chime_dispatch_p99_ms": ours,
                            "chime_dispatch_max_ms": median_of("chime+recorder", "dispatch_lag_ms", "max"),
                            "rq_scheduler_dispatch_p50_ms": median_of("rq-scheduler", "dispatch_lag_ms", "p50"),
                            "rq_scheduler_dispatch_p99_ms": base,
                            "ratio_chime_over_rq_scheduler": common.ratio(ours, base),
                            "rq_scheduler_abs_error_p99_ms": base_abs,
                            "ratio_chime_over_rq_scheduler_abs_error": common.ratio(ours, base_abs),
                            "chime_end_to_end_p99_ms_lower_bound": median_of("chime+workers",
                                                                             "end_to_end_lag_ms_all_due_lower_bound"),
                            "goal_p99_le_100ms_met": None if ours is None else ours <= 100})
    print(f"\nDispatch lag, interval {args.interval} s, window {args.window:.0f} s (ms)")
    common.print_table(["N", "variant", "run", "metric", "n", "p50", "p90", "p99", "max"], rows)
    print()
    print(f"median over {args.repeat} run(s) of each run's p99:")
    common.print_table(["N", "chime p99", "rq-sched p99 (late)", "ratio", "rq-sched p99 |error|", "ratio",
                        "p99<=100ms"],
                       [[c["tasks"], c["chime_dispatch_p99_ms"], c["rq_scheduler_dispatch_p99_ms"],
                         c["ratio_chime_over_rq_scheduler"], c["rq_scheduler_abs_error_p99_ms"],
                         c["ratio_chime_over_rq_scheduler_abs_error"], c["goal_p99_le_100ms_met"]]
                        for c in comparisons])
    common.write_results(args.output, {
        "command": "bench/dispatch_lag.py " + " ".join(sys.argv[1:]),
        "parameters": {k: v for k, v in vars(args).items()},
        "load_per_second": {t: round(t / args.interval, 1) for t in args.tasks},
        "runs": runs, "comparison": comparisons,
    }, started_version)


if __name__ == "__main__":
    main()
