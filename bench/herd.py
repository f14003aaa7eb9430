"""Herd (issue 14): N CRON tasks `* * * * *` due at the same minute, the Procfile's processes, against
two bare RQ SimpleWorkers draining N no-op jobs on the same Redis; with a per-execution cost breakdown.

chime-sqlite / chime-postgres: on a private redis-server and a fresh database (temp SQLite file, or a
private schema in --postgres-url), the Procfile's scheduler and two Procfile workers are started and
waited for; then, at second :50 of a minute (so the herd is ~10 s away instead of up to a minute), N
tasks `* * * * *` (job noop, notify NEVER, overlap SKIP, no retries) are created with
common.bulk_create_tasks, whose first occurrence is the next minute M (cronie's rules). Measured:
  last success = max(Execution.finished_at) - M over the N SCHEDULE runs of M (the row is committed
                 right after finished_at is taken), and the median/p99 start lag (started_at - M);
  dispatched   = the last job's enqueued_at - M (the scheduler's share of the wait).
bare (the baseline, in the same run and on the same redis-server, after the Chime processes are
stopped): N jobs of bench.bare.noop enqueued on queue `bare`, then two
`rq worker --burst --worker-class rq.SimpleWorker` started and timed from process start until both
exit (process start included, as issue 14 measures it). Ratio = chime last success / bare drain.

Cost breakdown, per execution (divided by N), between a snapshot taken 0.3 s before M and one taken
1.5 s after the last success (the hook writes its counters every second):
  - inside the engine processes, by bench/hooks/sitecustomize.py (put on their PYTHONPATH with
    CHIME_BENCH_COUNTS_DIR; the Procfile commands are unchanged, no product code is touched): SQL
    statements by kind, commits, rollbacks, Redis commands and round trips sent, per process and per
    bucket -- inside the executor's job function, inside another job (Chime's periodic reconcile,
    which falls due at every minute too), and outside a job (RQ's worker loop; the whole scheduler);
  - in Redis: `INFO commandstats` before/after (commands run inside Lua scripts count one by one),
    also for the bare drain, which gives RQ's own commands per job.
The counters cost ~1-2 % of a worker's samples (py-spy: the hook's own frames 0.8-1.4 %, its
writer thread 0.4 %), within run-to-run noise; the figures include them.
--profile attaches py-spy (not a requirement; `pip install py-spy` somewhere and pass --py-spy)
to both workers from M - 0.5 s for --profile-seconds (main threads only) in one extra run per database, outside the
medians, and writes their collapsed stacks to --profile-dir and the top frames into the JSON.

Usage (from the repo root):  .venv/bin/python bench/herd.py --tasks 1000 --repeat 3
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import log  # noqa: E402

HOOKS_DIR = common.ROOT / "bench" / "hooks"
EXECUTOR_BUCKET = "scheduler.executor.execute"  # the function of every occurrence job (chime.occurrence.EXECUTE_FUNC)
BARE_QUEUE = "bare"
STATEMENT = "statement: "  # the hook's key prefix for a statement's text
CREATE_AT_SECOND = 50  # tasks are created at :50 of a minute, the herd falls due at the next :00


# -- Redis commandstats ----------------------------------------------------------------------------
def command_calls(connection: Any) -> Counter:
    stats = connection.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): values["calls"] for name, values in stats.items()})


def per_item(counter: Counter, items: int, top: int = 12) -> dict[str, Any]:
    total = sum(counter.values())
    return {"total": total, "per_item": round(total / items, 2),
            "top_per_item": {name: round(calls / items, 2) for name, calls in counter.most_common(top)}}


# -- the hook's counters ---------------------------------------------------------------------------
def read_counts(directory: Path) -> dict[int, dict[str, Any]]:
    out = {}
    for path in directory.glob("*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out[data["pid"]] = data
    return out


def diff_counts(before: dict[int, Any], after: dict[int, Any], names: dict[int, str]) -> dict[str, dict[str, Counter]]:
    """{process name: {bucket: counter}} of what each engine process did between the snapshots."""
    out: dict[str, dict[str, Counter]] = {}
    for pid, data in after.items():
        name = names.get(pid, f"pid {pid}")
        old = before.get(pid, {}).get("counts", {})
        out[name] = {bucket: Counter(values) - Counter(old.get(bucket, {})) for bucket, values in data["counts"].items()}
    return out


def breakdown(by_process: dict[str, dict[str, Counter]], executions: int) -> dict[str, Any]:
    """Per execution: totals over the workers (by bucket) and the scheduler's share."""
    def per_execution(counter: Counter) -> dict[str, float]:
        return {key: round(value / executions, 3) for key, value in sorted(counter.items())
                if value and not key.startswith(STATEMENT)}

    def statements(counter: Counter) -> dict[str, float]:
        return {key.removeprefix(STATEMENT): round(value / executions, 3)
                for key, value in counter.most_common() if value and key.startswith(STATEMENT)}

    workers: dict[str, Counter] = {}
    for name, buckets in by_process.items():
        if name.startswith("worker"):
            for bucket, counter in buckets.items():
                workers.setdefault(bucket, Counter()).update(counter)
    scheduler = Counter()
    for bucket in by_process.get("scheduler", {}).values():
        scheduler.update(bucket)
    return {"workers_by_bucket": {bucket: per_execution(c) for bucket, c in workers.items()},
            "workers_total": per_execution(sum(workers.values(), Counter())),
            "scheduler": per_execution(scheduler),
            "worker_statements": {bucket: statements(c) for bucket, c in workers.items() if statements(c)},
            "scheduler_statements": statements(scheduler)}


# -- py-spy ----------------------------------------------------------------------------------------
def start_profiles(py_spy: str, pids: dict[str, int], out_dir: Path, seconds: float) -> list[subprocess.Popen]:
    return [subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(int(math.ceil(seconds))),
                              "--rate", "200", "--format", "raw", "--output", str(out_dir / f"{name}.txt"),
                              "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            for name, pid in pids.items()]


def top_frames(collapsed: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample shares per frame of the main thread, from py-spy's collapsed stacks.

    py-spy drops idle samples by default; stacks rooted in `Thread._bootstrap` are other threads (the
    executor's liveness beat, the counting hook's writer) and are left out.
    """
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[0].startswith("Thread._bootstrap "):
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    share = (lambda c: {frame: round(100 * n / total, 1) for frame, n in c.most_common(top)}) if total else dict
    return {"samples": total, "self_percent": share(own), "inclusive_percent": share(inclusive)}


# -- one run ---------------------------------------------------------------------------------------
def next_herd_minute() -> float:
    """The minute M the herd falls due at: tasks are created at M - 10 s, so wait until then."""
    now = time.time()
    minute = math.floor(now / 60) * 60 + 60
    if now > minute - 60 + CREATE_AT_SECOND + 2:  # too late in this minute to create and settle: the next one
        minute += 60
    return minute


def chime_phase(args: argparse.Namespace, env: common.Env, profile_dir: Path | None) -> dict[str, Any]:
    from sqlalchemy import select

    from chime.extensions import db
    from chime.models import Execution

    counts_dir = env.tmp / "counts"
    counts_dir.mkdir()
    hook_env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(HOOKS_DIR), os.environ.get("PYTHONPATH")])),
                "CHIME_BENCH_COUNTS_DIR": str(counts_dir)}
    names = {}
    for name in ("scheduler", "worker1", "worker2"):
        process = name if name == "scheduler" else "worker"
        names[env.procs.start(name, common.procfile_command(process), extra_env=hook_env).pid] = name
    env.wait_engine_ready(workers=2, schedulers=1)
    minute = next_herd_minute()
    common.sleep_until(minute - 60 + CREATE_AT_SECOND)
    minute_dt = common.epoch_to_dt(minute)
    rows = [{"name": f"herd-{i}", "schedule_type": "CRON", "cron": "* * * * *", "timezone": "UTC",
             "notify": "NEVER", "overlap": "SKIP"} for i in range(args.tasks)]
    occurrences = common.bulk_create_tasks(rows, common.utcnow())
    if any(o.scheduled_for != minute_dt for o in occurrences):
        raise RuntimeError("tasks were created too late: their first occurrence is not the herd minute")
    job_ids = [o.job_id for o in occurrences]
    common.sleep_until(minute - 0.5)
    profiles = (start_profiles(args.py_spy, {n: p.pid for n, p in env.procs.procs.items() if n != "scheduler"},
                               profile_dir, args.profile_seconds) if profile_dir else [])
    common.sleep_until(minute - 0.3)
    counts_before, commands_before = read_counts(counts_dir), command_calls(env.redis)
    cpu_before = {name: common.cpu_seconds(p.pid) for name, p in env.procs.procs.items()}
    load_at_minute = os.getloadavg()[0]
    common.sleep_until(minute)
    query = (select(Execution.status, Execution.started_at, Execution.finished_at, Execution.job_id)
             .where(Execution.scheduled_for == minute_dt, Execution.trigger == "SCHEDULE", Execution.task_id.isnot(None)))

    def finished_runs() -> list[Any]:
        try:  # end the transaction at once: on SQLite every BEGIN takes the write lock (chime.database)
            return db.session.execute(query).all()
        finally:
            db.session.remove()

    def all_finished() -> list[Any] | None:
        rows = finished_runs()
        return rows if sum(1 for r in rows if r.finished_at is not None) >= args.tasks else None

    try:
        executions = common.wait_for(all_finished, args.timeout, f"{args.tasks} finished runs", poll=0.25)
    except TimeoutError:
        executions = finished_runs()
        log(f"WARNING: only {sum(1 for r in executions if r.finished_at)} of {args.tasks} finished in {args.timeout} s")
    time.sleep(1.5)  # the hook writes its counters every second
    counts_after, commands_after = read_counts(counts_dir), command_calls(env.redis)
    cpu_after = {name: common.cpu_seconds(p.pid) for name, p in env.procs.procs.items()}
    for proc in profiles:
        proc.wait(timeout=args.profile_seconds + 30)
    for name in ("scheduler", "worker1", "worker2"):
        env.procs.stop(name)

    succeeded = [r for r in executions if r.status == "SUCCESS"]
    statuses = Counter(r.status for r in executions)
    enqueued = [common.parse_rq_time(f[0]) for f in common.job_fields(env.redis, job_ids, "enqueued_at").values()]
    by_process = diff_counts(counts_before, counts_after, names)
    result = {
        "last_success_s": round(max(r.finished_at.timestamp() for r in succeeded) - minute, 3) if succeeded else None,
        "start_lag_ms": common.summary_ms(sorted(r.started_at.timestamp() - minute for r in executions if r.started_at)),
        "last_dispatched_s": round(max(e for e in enqueued if e) - minute, 3) if any(enqueued) else None,
        "executions_by_status": dict(statuses), "tasks": args.tasks, "load_at_minute": round(load_at_minute, 2),
        "cpu_seconds": {n: round((cpu_after[n] or 0) - (cpu_before[n] or 0), 2) for n in cpu_after},
        "per_execution": breakdown(by_process, args.tasks),
        "redis_commandstats": per_item(command_calls_diff(commands_before, commands_after), args.tasks),
    }
    sent = sum(c["redis commands"] for buckets in by_process.values() for c in buckets.values())
    # Redis counts each command a Lua script runs; the processes count the script call once.
    result["redis_commands_inside_scripts_per_execution"] = round(
        (result["redis_commandstats"]["total"] - sent) / args.tasks, 2)
    if profile_dir:
        result["profile"] = {p.stem: top_frames(p) for p in sorted(profile_dir.glob("worker*.txt"))}
    return result


def command_calls_diff(before: Counter, after: Counter) -> Counter:
    after = after.copy()
    after["info"] -= 1  # the snapshot's own INFO
    return after - before


def bare_phase(args: argparse.Namespace, env: common.Env) -> dict[str, Any]:
    from rq import Queue

    from bench.bare import noop

    queue = Queue(BARE_QUEUE, connection=env.redis)
    job_ids = [queue.enqueue(noop).id for _ in range(args.tasks)]
    commands_before = command_calls(env.redis)
    started = time.monotonic()
    command = f"rq worker --burst --worker-class rq.SimpleWorker --url {env.redis_server.url} {BARE_QUEUE}"
    procs = [env.procs.start(f"bare{i}", command) for i in (1, 2)]
    for proc in procs:
        proc.wait(timeout=args.timeout)
    drain = time.monotonic() - started
    commands_after = command_calls(env.redis)
    for i in (1, 2):
        env.procs.procs.pop(f"bare{i}", None)
    fields = common.job_fields(env.redis, job_ids, "started_at", "ended_at", "status")
    steady = (max(common.parse_rq_time(f[1]) for f in fields.values() if f[1])
              - min(common.parse_rq_time(f[0]) for f in fields.values() if f[0]))
    return {"drain_s": round(drain, 3), "steady_s": round(steady, 3),
            "finished": sum(1 for f in fields.values() if f[2] == b"finished"),
            "redis_commandstats": per_item(command_calls_diff(commands_before, commands_after), args.tasks)}


def herd_run(args: argparse.Namespace, database_url: str | None, profile_dir: Path | None = None) -> dict[str, Any]:
    with common.Env(database_url) as env:
        chime = chime_phase(args, env, profile_dir)
        bare = bare_phase(args, env)
    return {"chime": chime, "bare": bare, "ratio": common.ratio(chime["last_success_s"], bare["drain_s"])}


def summarise(items: list[dict[str, Any]]) -> dict[str, Any]:
    def med(values: list[Any]) -> float | None:
        values = [v for v in values if v is not None]
        return round(common.median(values), 3) if values else None

    return {
        "last_success_s": med([r["chime"]["last_success_s"] for r in items]),
        "start_lag_p50_ms": med([r["chime"]["start_lag_ms"]["p50"] for r in items]),
        "start_lag_p99_ms": med([r["chime"]["start_lag_ms"]["p99"] for r in items]),
        "last_dispatched_s": med([r["chime"]["last_dispatched_s"] for r in items]),
        "bare_drain_s": med([r["bare"]["drain_s"] for r in items]),
        "bare_steady_s": med([r["bare"]["steady_s"] for r in items]),
        "ratio": med([r["ratio"] for r in items]),
        "ratio_runs": [r["ratio"] for r in items],
        "goal_ratio_at_most_1_5_met": (med([r["ratio"] for r in items]) or math.inf) <= 1.5,
        "redis_commands_per_execution": med([r["chime"]["redis_commandstats"]["per_item"] for r in items]),
        "bare_redis_commands_per_job": med([r["bare"]["redis_commandstats"]["per_item"] for r in items]),
        "sql_per_execution": med([r["chime"]["per_execution"]["workers_total"].get("sql") for r in items]),
        "commits_per_execution": med([r["chime"]["per_execution"]["workers_total"].get("commits") for r in items]),
        "load_at_minute": [r["chime"]["load_at_minute"] for r in items],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000, help="N tasks in the herd (and N bare jobs)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per database (median reported)")
    parser.add_argument("--postgres-url", default=common.DEFAULT_POSTGRES_URL,
                        help="Postgres for chime-postgres ('' to skip); each run uses a private schema in it")
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True, help="run chime-sqlite")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--profile", action="store_true", help="one extra py-spy run per database (not in medians)")
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable for --profile")
    parser.add_argument("--profile-seconds", type=float, default=20.0)
    parser.add_argument("--profile-dir", default=None,
                        help="where py-spy's collapsed stacks go (default: a new temp directory; ~1 MB per database)")
    args = parser.parse_args()
    started_version = common.code_version()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `kill` still stops the engine and redis-server

    variants = (["chime-sqlite"] if args.sqlite else []) + (["chime-postgres"] if args.postgres_url else [])
    urls = {"chime-sqlite": None, "chime-postgres": args.postgres_url}
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for repeat in range(args.repeat):
        for variant in variants:  # interleaved, so machine noise spreads over both databases
            run = herd_run(args, urls[variant])
            runs[variant].append(run)
            log(f"run {repeat + 1} {variant}: last success {run['chime']['last_success_s']} s, "
                f"bare {run['bare']['drain_s']} s, ratio {run['ratio']}, "
                f"start lag p50 {run['chime']['start_lag_ms']['p50']} ms, load {run['chime']['load_at_minute']}")
    profiles: dict[str, Any] = {}
    if args.profile:
        for variant in variants:
            args.profile_dir = args.profile_dir or tempfile.mkdtemp(prefix="chime-herd-profiles-")
            out_dir = Path(args.profile_dir) / variant
            out_dir.mkdir(parents=True, exist_ok=True)
            profiles[variant] = herd_run(args, urls[variant], out_dir)
            log(f"profiled {variant}: ratio {profiles[variant]['ratio']}; collapsed stacks in {out_dir}")

    summary = {variant: summarise(items) for variant, items in runs.items() if items}
    print(f"\nHerd: {args.tasks} CRON tasks due at the same minute, 2 workers, median of {args.repeat}")
    common.print_table(
        ["variant", "last success s", "bare drain s", "ratio", "start lag p50 ms", "redis cmd/exec", "sql/exec",
         "commits/exec"],
        [[v, s["last_success_s"], s["bare_drain_s"], s["ratio"], s["start_lag_p50_ms"],
          s["redis_commands_per_execution"], s["sql_per_execution"], s["commits_per_execution"]]
         for v, s in summary.items()])
    common.write_results("herd", {"command": "bench/herd.py " + " ".join(sys.argv[1:]), "parameters": vars(args),
                                  "summary": summary, "runs": runs, "profiled_runs": profiles}, started_version)


if __name__ == "__main__":
    main()
