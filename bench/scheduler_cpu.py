"""Scheduler CPU at steady load (issue 14): CPU % of one core of the scheduler process, with its dispatch lag.

Load: N enabled INTERVAL tasks (noop, overlap SKIP, notify ALWAYS), interval I, first fires spread evenly
over one interval (N/I fires per second; 10,000 / 60 s = 167/s), no workers: the recorder of
bench/dispatch_lag.py pops each job the moment it lands on a queue (dispatch lag = on the queue - scheduled
time) and marks it finished, as a worker would. CPU = utime + stime of the scheduler process from
/proc/<pid>/stat over a steady window of W seconds that starts `--warmup` seconds after the first fire.

Variants, interleaved in every repeat, each on its own redis-server and database:
  chime           `python -m scheduler` of this tree (or of --after-root)
  chime-before    the same command run from another tree (--before-root, e.g. a `git archive` export of the
                  commit before the change), on the same data
  rq-scheduler    the reference: `rqscheduler --interval 1` moving the same due times (not recurring jobs:
                  rq-scheduler's job is only the move, no next occurrence, no database)
  idle / idle-before   the scheduler with no task at all: its housekeeping alone

--profile SECONDS attaches `py-spy record` (if installed) to the chime scheduler in the first repeat and
writes the collapsed stacks to bench/results/scheduler_cpu_profile_<variant>.txt with a top-25 summary.

Usage:  .venv/bin/python bench/scheduler_cpu.py --tasks 10000 --repeat 3 --before-root /tmp/chime-before
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import log  # noqa: E402

RESULTS = common.RESULTS_DIR


def start_in(env: common.Env, name: str, command: str, root: Path) -> subprocess.Popen:
    """Start `command` like the Procfile's processes, but from the tree at `root`."""
    out = open(env.tmp / f"{name}.log", "ab")
    proc = subprocess.Popen(["bash", "-c", "exec " + command], cwd=root, env=env.procs.env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    env.procs.procs[name] = proc
    return proc


def chime_run(args: argparse.Namespace, variant: str, root: Path, tasks: int, profile: float) -> dict[str, Any]:
    with common.Env(args.database_url) as env:
        lead = args.lead if args.lead is not None else 8 + tasks * 0.0008
        t0 = math.ceil(time.time()) + lead
        occurrences = []
        if tasks:
            rows = common.interval_rows(tasks, common.epoch_to_dt(t0), args.interval, args.interval)
            occurrences = common.bulk_create_tasks(rows, common.utcnow())
        recorder = common.Recorder(env.redis_server.url, mark_finished=True).start()
        proc = start_in(env, "scheduler", common.procfile_command("scheduler"), root)
        env.wait_engine_ready(workers=0, schedulers=1)
        if time.time() > t0:
            log("WARNING: engine ready after T0; raise --lead")
        window_start = t0 + args.warmup
        window_end = window_start + args.window
        common.sleep_until(window_start)
        profiler = start_profiler(proc.pid, profile, variant) if profile else None
        cpu_before = common.cpu_seconds(proc.pid)
        calls_before = command_calls(env.redis)
        common.sleep_until(window_end)
        cpu_after = common.cpu_seconds(proc.pid)
        calls = {c: n - calls_before.get(c, 0) for c, n in command_calls(env.redis).items()
                 if n - calls_before.get(c, 0)}
        common.sleep_until(window_end + args.tail)
        profile_summary = finish_profiler(profiler) if profiler else None
        seen = recorder.stop()
        env.procs.stop("scheduler")
        if args.keep_logs:
            shutil.copy(env.tmp / "scheduler.log", Path(args.keep_logs) / f"{variant}-{time.time():.0f}.log")
        due = {o.job_id: o.scheduled_for.timestamp() for o in occurrences
               if o is not None and window_start <= o.scheduled_for.timestamp() < window_end}
        lag = [seen[j] - s for j, s in due.items() if j in seen]
        cpu = (cpu_after or 0) - (cpu_before or 0)
        result = {"variant": variant, "tasks": tasks, "root": str(root), "due_in_window": len(due),
                  "not_dispatched": len(due) - len(lag), "dispatch_lag_ms": common.summary_ms(lag),
                  "cpu_seconds": round(cpu, 2), "window_seconds": args.window,
                  "cpu_percent_of_core": round(100 * cpu / args.window, 1),
                  "worst_seconds": worst_seconds(due, seen, window_start),
                  # Redis calls in the window (the recorder's BLPOP/LPOP/HSET/ZREM included), and per fire
                  "redis_calls_in_window": calls,
                  "scheduler_calls_per_fire": {c: round(calls.get(c, 0) / len(due), 2) for c in SCHEDULER_COMMANDS
                                               if len(due) and calls.get(c)}}
        if profile_summary:
            result["profile"] = profile_summary
        return result


# Commands only the scheduler sends (the recorder sends BLPOP, LPOP, HSET, ZREM): scripts, reads of the schedule.
SCHEDULER_COMMANDS = ("evalsha", "eval", "zrangebyscore", "zrange", "hmget", "hgetall", "del", "set")


def command_calls(connection: Any) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats)."""
    return {name.removeprefix("cmdstat_"): int(stats["calls"]) for name, stats in
            connection.info("commandstats").items()}


def rq_scheduler_run(args: argparse.Namespace, tasks: int) -> dict[str, Any]:
    from bench.bare import noop

    with common.Env(args.database_url) as env:
        job_ids = common.rq_scheduler_jobs(env.redis, tasks, noop)
        t0 = math.ceil(time.time()) + 6
        step = args.interval / tasks
        intended = {job_id: t0 + i * step for i, job_id in enumerate(job_ids)}
        common.rescore(env.redis, intended)
        recorder = common.Recorder(env.redis_server.url, mark_finished=False).start()
        proc = start_in(env, "rqscheduler", f"rqscheduler --url {env.redis_server.url} --interval 1", common.ROOT)
        window_start = t0 + args.warmup
        window_end = window_start + args.window
        common.sleep_until(window_start)
        cpu_before = common.cpu_seconds(proc.pid)
        common.sleep_until(window_end)
        cpu_after = common.cpu_seconds(proc.pid)
        common.sleep_until(window_end + args.tail)
        seen = recorder.stop()
        env.procs.stop("rqscheduler")
        due = {j: s for j, s in intended.items() if window_start <= s < window_end}
        lag = [seen[j] - s for j, s in due.items() if j in seen]
        cpu = (cpu_after or 0) - (cpu_before or 0)
        return {"variant": "rq-scheduler", "tasks": tasks, "due_in_window": len(due),
                "not_dispatched": len(due) - len(lag), "dispatch_lag_ms": common.summary_ms(lag),
                "cpu_seconds": round(cpu, 2), "window_seconds": args.window,
                "cpu_percent_of_core": round(100 * cpu / args.window, 1)}


def worst_seconds(due: dict[str, float], seen: dict[str, float], start: float, top: int = 5) -> list[list[float]]:
    """The seconds of the window (after its start) whose fires were latest: [second, max lag ms, fires]."""
    by_second: dict[int, list[float]] = {}
    for job_id, at in due.items():
        if job_id in seen:
            by_second.setdefault(int(at - start), []).append(seen[job_id] - at)
    worst = sorted(by_second.items(), key=lambda item: max(item[1]), reverse=True)[:top]
    return [[second, round(1000 * max(lags), 1), len(lags)] for second, lags in worst]


def start_profiler(pid: int, seconds: float, variant: str) -> tuple[subprocess.Popen, Path] | None:
    py_spy = shutil.which("py-spy", path=str(common.VENV_BIN)) or shutil.which("py-spy")
    if not py_spy:
        log("py-spy not installed (.venv/bin/pip install py-spy): no profile")
        return None
    out = RESULTS / f"scheduler_cpu_profile_{variant}.txt"
    proc = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
                             "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, out


def finish_profiler(profiler: tuple[subprocess.Popen, Path]) -> dict[str, Any]:
    proc, out = profiler
    proc.wait(timeout=120)
    return summarise_profile(out)


def summarise_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Top frames by inclusive share of the samples (py-spy raw = collapsed stacks 'a;b;c count')."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        for frame in set(frames):
            inclusive[short(frame)] += count
        own[short(frames[-1])] += count
    share = (lambda c: round(100 * c / total, 1)) if total else (lambda c: 0)
    return {"samples": total, "file": str(path.relative_to(common.ROOT)),
            "inclusive_percent": [[f, share(c)] for f, c in inclusive.most_common(top)],
            "own_percent": [[f, share(c)] for f, c in own.most_common(top)]}


def short(frame: str) -> str:
    """'func (path/to/module.py:12)' -> 'func (module.py)': lines differ between samples of one function."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 2)
    return f"{name} ({'/'.join(file[-2:])})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--window", type=float, default=40.0, help="seconds of CPU and lag measured")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after the first fire before the window")
    parser.add_argument("--tail", type=float, default=1.0)
    parser.add_argument("--lead", type=float, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before-root", default=None, help="a tree of the code before the change (git archive)")
    parser.add_argument("--before-label", default="before")
    parser.add_argument("--after-root", default=None,
                        help="the tree of the `chime` variant (default: this one; an export keeps others' edits out)")
    parser.add_argument("--after-label", default="after")
    parser.add_argument("--variants", nargs="+", default=["chime", "chime-before", "rq-scheduler", "idle",
                                                          "idle-before"])
    parser.add_argument("--profile", type=float, default=0.0, help="py-spy seconds in the first repeat (0: none)")
    parser.add_argument("--nice", type=int, default=0,
                        help="run this process (its recorder) and all it starts at this niceness increment, e.g. -10 "
                             "(root): on a shared machine, other load then does not starve them")
    parser.add_argument("--keep-logs", default=None, help="copy each scheduler's log into this directory")
    parser.add_argument("--database-url", default=None, help="default: a temp SQLite file")
    parser.add_argument("--output", default="scheduler_cpu")
    args = parser.parse_args()
    if args.nice:  # inherited by every process the run starts: redis-server, the schedulers
        os.nice(args.nice)
    started_version = common.code_version()
    variants = [v for v in args.variants if args.before_root or not v.endswith("-before")]
    roots = {"": Path(args.after_root).resolve() if args.after_root else common.ROOT, "-before": Path(args.before_root).resolve() if args.before_root else None}

    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeat):
        for variant in variants:
            log(f"run {repeat + 1} {variant}, load {os.getloadavg()[0]:.2f}")
            load = os.getloadavg()[0]
            if variant == "rq-scheduler":
                run = rq_scheduler_run(args, args.tasks)
            else:
                suffix = "-before" if variant.endswith("-before") else ""
                tasks = 0 if variant.startswith("idle") else args.tasks
                profile = args.profile if repeat == 0 and not variant.startswith("idle") else 0
                run = chime_run(args, variant, roots[suffix], tasks, profile)
            run.update(run=repeat + 1, loadavg_1m_at_start=load)
            runs.append(run)
            log(f"  cpu {run['cpu_percent_of_core']} % lag {run['dispatch_lag_ms']} not dispatched "
                f"{run['not_dispatched']}")

    summary = []
    for variant in variants:
        mine = [r for r in runs if r["variant"] == variant]
        lag_runs = [r["dispatch_lag_ms"] for r in mine if r["dispatch_lag_ms"]["n"]]
        summary.append({
            "variant": variant, "runs": len(mine),
            "cpu_percent_median": common.median([r["cpu_percent_of_core"] for r in mine]),
            "cpu_percent_runs": [r["cpu_percent_of_core"] for r in mine],
            "lag_p50_ms_median": common.median([m["p50"] for m in lag_runs]) if lag_runs else None,
            "lag_p99_ms_median": common.median([m["p99"] for m in lag_runs]) if lag_runs else None,
            "lag_p99_ms_runs": [m["p99"] for m in lag_runs],
            "not_dispatched": sum(r["not_dispatched"] for r in mine),
        })
    print(f"\nScheduler CPU, {args.tasks} tasks every {args.interval} s ({args.tasks / args.interval:.0f}/s), "
          f"window {args.window:g} s, medians of {args.repeat}")
    common.print_table(["variant", "CPU % of a core", "runs", "lag p50 ms", "lag p99 ms", "p99 runs",
                        "not dispatched"],
                       [[s["variant"], s["cpu_percent_median"], s["cpu_percent_runs"], s["lag_p50_ms_median"],
                         s["lag_p99_ms_median"], s["lag_p99_ms_runs"], s["not_dispatched"]] for s in summary])
    common.write_results(args.output, {
        "command": "bench/scheduler_cpu.py " + " ".join(sys.argv[1:]),
        "parameters": vars(args), "before_label": args.before_label, "after_label": args.after_label, "runs": runs, "summary": summary,
    }, started_version)


if __name__ == "__main__":
    main()
