"""Alert rules' cost to the executor (issue 13): executions per second of ONE worker with a rule and a webhook
channel on every task, against the same run with no rules -- "the executor is not slowed by more than 5 %".

One round = one fresh environment (private redis-server, fresh SQLite file or private Postgres schema):
  1. one task; variant `none`: no rule, no channel; `task`: a rule of the task's own (every task event) to a
     webhook channel whose receiver (a local http.server) accepts everything; `default`: the same rule as the
     default rule (task_id NULL);
  2. the Procfile's `alerts` process runs in EVERY variant (it also runs the watchdog: every deployment has
     it); with --no-alerts-worker-in-none the `none` rounds run without it (the first attempt's set-up);
  3. the Procfile's `worker` process is started (not --burst) and waited for until it is registered and idle,
     so its start-up is not measured; then N manual runs of the task are pushed (occ.push_now, what "run
     now" does) and the round ends when the last job is done.
Run mixes: `success` (job noop: no run raises an event), `fail` (job fail: every run a final FAILED, each one
an outbox row), `mix` (job fail with per-run arguments: every 10th run fails, so 10 % `failed` and 10 % a
success after a failure, i.e. a `recovered` candidate; the other 80 % raise nothing).

Measured per round, between a snapshot taken when the worker is idle and ready and one after the last job:
  - wall/s: N / (first push -> last job done, polled every 20 ms); steady/s: N / (first job started_at -> last
    ended_at, RQ's job hashes);
  - the worker process's CPU per run (/proc/<pid>/stat utime+stime, ms) -- the executor's own cost, much less
    sensitive to the machine's load than wall time -- and the alerts process's CPU seconds in the same window;
  - per run: SQL statements (by first word and by text), commits and Redis commands / round trips, counted in
    the worker by bench/hooks/sitecustomize.py (BENCHMARKS.md §6), split into the executor (the RQ job function)
    and RQ's loop around it.
Variants are interleaved within a round group (their order rotates with the repeat); reported: medians over
--repeat rounds and the ratio `task`/`none` and `default`/`none` of the medians, plus the median and range of
the per-group ratios (adjacent rounds, so shared machine load cancels more).

--inprocess measures the executor alone in this process (no RQ loop, no alerts worker), `none` (the task's rule
disabled) against `task` (enabled): in blocks of --block runs by the Procfile's worker class (ABBA order), or with
--interleave-runs N, run by run, calling the job function directly -- the finest pairing, which resolves a few per
cent on a loaded machine where process rounds cannot. BENCHMARKS.md §10.

Usage (from the repo root):
  .venv/bin/python bench/alerts_overhead.py --inprocess --interleave-runs 300 --mixes fail,mix
  .venv/bin/python bench/alerts_overhead.py --jobs 150 --repeat 5 --rules none,task
  .venv/bin/python bench/alerts_overhead.py --inprocess --blocks 12 --block 40
  (both databases by default; the `default` rule variant: --rules none,task,default, in the mixes --default-mixes)
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import log  # noqa: E402
from bench.herd import EXECUTOR_BUCKET, HOOKS_DIR, STATEMENT, diff_counts, read_counts  # noqa: E402
from bench.throughput import steady_seconds  # noqa: E402

TASK_EVENTS = ["failed", "retrying", "failing", "recovered", "skipped"]
RULE_VARIANTS = ("none", "task", "default")
MIXES = ("success", "fail", "mix")
FAIL_EVERY = 10  # in the `mix`: every 10th run fails
OUTSIDE = "outside a job"


class Accept(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Accept.received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def registered(env: common.Env, queue: str) -> bool:
    from rq import Worker

    return any(queue in w.queue_names() and w.get_state() == "idle" for w in Worker.all(connection=env.redis))


def run_args(mix: str, index: int) -> dict[str, Any] | None:
    """The run's own arguments (None: the task's). In the mix, job `fail` succeeds with times=0."""
    if mix != "mix":
        return None
    return {"message": "bench"} if index % FAIL_EVERY == FAIL_EVERY - 1 else {"message": "bench", "times": 0}


def per_run(counter: Counter, runs: int) -> dict[str, float]:
    return {key: round(value / runs, 3) for key, value in sorted(counter.items())
            if value and not key.startswith(STATEMENT)}


def statements_per_run(counter: Counter, runs: int) -> dict[str, float]:
    return {key.removeprefix(STATEMENT): round(value / runs, 3)
            for key, value in counter.most_common() if value and key.startswith(STATEMENT)}


def one_round(args: argparse.Namespace, database: str, mix: str, rules: str, receiver_url: str) -> dict[str, Any]:
    from cryptography.fernet import Fernet
    from sqlalchemy import func, select

    from chime import alert_rules, channels
    from chime import occurrence as occ
    from chime.extensions import db
    from chime.models import AlertOutbox, Delivery, Execution, Task
    from chime.unit_of_work import unit_of_work

    key = Fernet.generate_key().decode()
    os.environ.update(CHIME_SECRETS_KEY=key, CHIME_EGRESS_ALLOW="127.0.0.1/32")
    with common.Env(None if database == "sqlite" else database) as env:
        env.env.update(CHIME_SECRETS_KEY=key, CHIME_EGRESS_ALLOW="127.0.0.1/32")
        counts_dir = env.tmp / "counts"
        counts_dir.mkdir()
        hook_env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(HOOKS_DIR), os.environ.get("PYTHONPATH")])),
                    "CHIME_BENCH_COUNTS_DIR": str(counts_dir)}
        now = common.utcnow()
        job = "noop" if mix == "success" else "fail"
        common.bulk_create_tasks([{"name": "bench-alerts", "job": job, "args": {"message": "bench"} if job == "fail" else {},
                                   "schedule_type": "INTERVAL", "interval_seconds": 86400,
                                   "start_at": now + timedelta(days=1), "overlap": "ALLOW"}], now)
        task = db.session.get(Task, 1)
        if rules != "none":
            with unit_of_work():
                channel = channels.create_channel({"name": "bench-hook", "kind": "webhook",
                                                   "config": {"url": receiver_url}, "secrets": {"secret": "s" * 32}})
                alert_rules.create_rule({"task_id": task.id if rules == "task" else None, "events": TASK_EVENTS,
                                         "channel_ids": [channel.id]})
        names: dict[int, str] = {}
        with_alerts = rules != "none" or not args.no_alerts_worker_in_none
        if with_alerts:
            names[env.procs.start("alerts", common.procfile_command("alerts"), extra_env=hook_env).pid] = "alerts"
        names[env.procs.start("worker", common.procfile_command("worker"), extra_env=hook_env).pid] = "worker"
        common.wait_for(lambda: registered(env, "default") and (not with_alerts or registered(env, "alerts")), 90,
                        "the worker (and the alerts worker) to register")
        time.sleep(1.5)  # start-up done, the alerts worker's first sweep and watchdog pass, a hook snapshot
        task = db.session.get(Task, 1)
        occurrences = [occ.Occurrence.of(task, now + timedelta(microseconds=i), trigger="MANUAL", args=run_args(mix, i))
                       for i in range(args.jobs)]
        db.session.remove()  # no transaction open while the worker runs (SQLite: BEGIN takes the write lock)
        pids = {name: pid for pid, name in names.items()}
        counts_before = read_counts(counts_dir)
        cpu_before = {name: common.cpu_seconds(pid) for name, pid in pids.items()}
        load = os.getloadavg()[0]
        started = time.monotonic()
        job_ids = [occ.push_now(env.redis, o, now + timedelta(microseconds=i)) for i, o in enumerate(occurrences)]
        last = f"rq:job:{job_ids[-1]}"
        common.wait_for(lambda: env.redis.hget(last, "status") in (b"finished", b"failed"), args.timeout,
                        f"{args.jobs} runs", poll=0.02)
        wall = time.monotonic() - started
        cpu_after = {name: common.cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(1.3)  # the hook writes its counters every second
        counts_after = read_counts(counts_dir)
        by_process = diff_counts(counts_before, counts_after, names)
        env.procs.stop_all()
        steady = steady_seconds(env.redis, job_ids)
        finished = db.session.scalar(select(func.count()).select_from(Execution)
                                     .where(Execution.status.in_(["SUCCESS", "FAILED"])))
        outbox_left = db.session.scalar(select(func.count()).select_from(AlertOutbox))
        deliveries = db.session.scalar(select(func.count()).select_from(Delivery))
        db.session.remove()
        if finished != args.jobs:
            log(f"WARNING: {finished} finished executions for {args.jobs} jobs\n{env.procs.tail('worker')}")
        worker = by_process.get("worker", {})
        executor, outside = worker.get(EXECUTOR_BUCKET, Counter()), worker.get(OUTSIDE, Counter())
        n = args.jobs
        return {"load_1min": round(load, 2), "wall_seconds": round(wall, 3),
                "wall_per_second": round(n / wall, 1),
                "steady_per_second": round(n / steady, 1) if steady else None,
                "worker_cpu_ms_per_run": round(1000 * (cpu_after["worker"] - cpu_before["worker"]) / n, 3),
                "alerts_cpu_seconds": round(cpu_after["alerts"] - cpu_before["alerts"], 2) if with_alerts else None,
                "executor_per_run": per_run(executor, n), "rq_loop_per_run": per_run(outside, n),
                "executor_statements_per_run": statements_per_run(executor, n),
                "alerts_process": per_run(sum(by_process.get("alerts", {}).values(), Counter()), 1),
                "executions_final": finished, "outbox_left_at_end": outbox_left, "deliveries_at_end": deliveries}


# -- in-process A/B: the executor's own cost, alternating in blocks ---------------------------------------
def task_with_rule(mix: str, now: Any) -> int:
    """Create the one task the in-process variants run (`noop`, or `fail` for the failing mixes) and its rule
    of every task event to a webhook channel; return the rule's id."""
    from chime import alert_rules, channels
    from chime.unit_of_work import unit_of_work

    job = "noop" if mix == "success" else "fail"
    common.bulk_create_tasks([{"name": "bench-alerts", "job": job, "args": {"message": "bench"} if job == "fail" else {},
                               "schedule_type": "INTERVAL", "interval_seconds": 86400,
                               "start_at": now + timedelta(days=1), "overlap": "ALLOW"}], now)
    with unit_of_work():
        channel = channels.create_channel({"name": "bench-hook", "kind": "webhook",
                                           "config": {"url": "http://127.0.0.1:9/hook"}, "secrets": {"secret": "s" * 32}})
        return alert_rules.create_rule({"task_id": 1, "events": TASK_EVENTS, "channel_ids": [channel.id]}).id


def inprocess(args: argparse.Namespace, database: str, mix: str) -> dict[str, Any]:
    """Runs of one task executed in THIS process by the Procfile's worker class (burst, as the in-process
    engine tests run it), in blocks of --block runs that alternate `none` (the task's rule disabled: the
    executor then sees no enabled rule) and `task` (enabled), ABBA order, --blocks blocks each; no alerts
    worker (the outbox is emptied between blocks). Measured inside the RQ job function
    (scheduler.executor.execute, all of Chime's per-run work): the thread's CPU time and wall time per run,
    and SQL statements per run -- adjacent blocks share the machine's load, so their ratio is robust."""
    from cryptography.fernet import Fernet
    from sqlalchemy import delete, event, update

    import scheduler.executor as executor
    import scheduler.worker as worker_module
    from chime import occurrence as occ
    from chime.extensions import db
    from chime.models import AlertOutbox, AlertRule, Task

    key = Fernet.generate_key().decode()
    os.environ.update(CHIME_SECRETS_KEY=key, CHIME_EGRESS_ALLOW="127.0.0.1/32")
    with common.Env(None if database == "sqlite" else database) as env:
        now = common.utcnow()
        rule_id = task_with_rule(mix, now)
        worker_module._app = env.app
        spent = {"cpu": 0.0, "wall": 0.0, "sql": 0}
        original = executor.execute

        def timed(*a: Any, **k: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                spent["cpu"] += time.thread_time() - cpu
                spent["wall"] += time.perf_counter() - wall

        def count(*_: Any) -> None:
            spent["sql"] += 1

        executor.execute = timed
        event.listen(db.engine, "before_cursor_execute", count)

        class BurstWorker(worker_module.ChimeWorker):
            def subscribe(self) -> None:  # no command channel (tests/engine/inprocess/engine.py)
                pass

        blocks: dict[str, list[dict[str, float]]] = {"none": [], "task": []}
        counter = 0
        try:
            for block in range(2 * args.blocks):
                variant = ("none", "task", "task", "none")[block % 4]  # ABBA: a linear drift cancels
                db.session.execute(delete(AlertOutbox))
                db.session.execute(update(AlertRule).where(AlertRule.id == rule_id).values(enabled=variant == "task"))
                db.session.commit()
                task = db.session.get(Task, 1)
                for _ in range(args.block):
                    at = now + timedelta(microseconds=counter)
                    occ.push_now(env.redis, occ.Occurrence.of(task, at, trigger="MANUAL", args=run_args(mix, counter)), at)
                    counter += 1
                db.session.remove()
                spent.update(cpu=0.0, wall=0.0)
                sql_before = spent["sql"]
                BurstWorker(list(common.QUEUES), connection=env.redis).work(burst=True)
                blocks[variant].append({"cpu_ms_per_run": 1000 * spent["cpu"] / args.block,
                                        "wall_ms_per_run": 1000 * spent["wall"] / args.block,
                                        "sql_per_run": (spent["sql"] - sql_before) / args.block})
        finally:
            executor.execute = original
            event.remove(db.engine, "before_cursor_execute", count)
            worker_module._app = None
    out: dict[str, Any] = {"blocks": blocks, "load_1min_at_end": round(os.getloadavg()[0], 2)}
    for figure in ("cpu_ms_per_run", "wall_ms_per_run", "sql_per_run"):
        med = {v: common.median([b[figure] for b in blocks[v]]) for v in blocks}
        pairs = [t[figure] / n[figure] for n, t in zip(blocks["none"], blocks["task"]) if n[figure]]
        out[figure] = {"none": round(med["none"], 3), "task": round(med["task"], 3),
                       "ratio_of_medians": common.ratio(med["task"], med["none"]),
                       "paired_median": round(common.median(pairs), 3) if pairs else None,
                       "paired_min": round(min(pairs), 3) if pairs else None,
                       "paired_max": round(max(pairs), 3) if pairs else None}
    return out


def interleaved(args: argparse.Namespace, database: str, mix: str) -> dict[str, Any]:
    """The finest A/B: the executor's job function (scheduler.executor.execute, all of Chime's per-run work)
    called directly in this process, run by run, `none` and `task` alternating ABBA run by run (the rule is
    switched, and the outbox emptied, between runs, outside the measurement); per run its thread CPU time.
    Without RQ around it (its loop is the same in both variants) and without an alerts worker."""
    from cryptography.fernet import Fernet
    from sqlalchemy import delete, update

    import scheduler.executor as executor
    import scheduler.worker as worker_module
    from chime.extensions import db
    from chime.models import AlertOutbox, AlertRule

    key = Fernet.generate_key().decode()
    os.environ.update(CHIME_SECRETS_KEY=key, CHIME_EGRESS_ALLOW="127.0.0.1/32")
    cpu: dict[str, list[float]] = {"none": [], "task": []}
    with common.Env(None if database == "sqlite" else database) as env:
        now = common.utcnow()
        rule_id = task_with_rule(mix, now)
        worker_module._app = env.app
        logging_level = logging.getLogger().level
        logging.getLogger().setLevel(logging.WARNING)
        try:
            for i in range(-20, 2 * args.interleave_runs):  # 20 warm-up runs, not counted
                variant = ("none", "task", "task", "none")[i % 4]
                db.session.execute(delete(AlertOutbox))
                db.session.execute(update(AlertRule).where(AlertRule.id == rule_id).values(enabled=variant == "task"))
                db.session.commit()
                db.session.remove()
                at = (now + timedelta(microseconds=i + 20)).isoformat()
                run = run_args(mix, i + 20)
                started = time.thread_time()
                try:
                    executor.execute(1, "MANUAL", scheduled_for=at, attempt=1, args=run,
                                     args_signature=None if run is None else occ_signature(env, run))
                except Exception as error:  # a final failure raises RunFailedError once it is stored
                    if type(error).__name__ != "RunFailedError":
                        raise
                if i >= 0:
                    cpu[variant].append(1000 * (time.thread_time() - started))
        finally:
            logging.getLogger().setLevel(logging_level)
            worker_module._app = None
    med = {v: common.median(cpu[v]) for v in cpu}
    pairs = [t / n for n, t in zip(cpu["none"], cpu["task"]) if n]
    return {"runs_per_variant": args.interleave_runs, "cpu_ms_per_run": {v: round(med[v], 3) for v in med},
            "ratio_of_medians": common.ratio(med["task"], med["none"]),
            "mean_ms": {v: round(sum(cpu[v]) / len(cpu[v]), 3) for v in cpu},
            "ratio_of_means": common.ratio(sum(cpu["task"]) / len(cpu["task"]), sum(cpu["none"]) / len(cpu["none"])),
            "paired_median": round(common.median(pairs), 3) if pairs else None,
            "load_1min_at_end": round(os.getloadavg()[0], 2), "cpu_ms": cpu}


def occ_signature(env: Any, args: dict[str, Any]) -> str:
    from chime import occurrence as occ

    return occ.args_signature(env.app.config["SECRET_KEY"], 1, args)


def inprocess_main(args: argparse.Namespace, databases: list[str], mixes: list[str], started_version: Any) -> None:
    results: dict[str, Any] = {}
    for database in databases:
        for mix in mixes:
            name = f"{'sqlite' if database == 'sqlite' else 'postgres'}/{mix}"
            if args.interleave_runs:
                results[name] = interleaved(args, database, mix)
                log(f"interleaved {name}: " + str({k: v for k, v in results[name].items() if k != "cpu_ms"}))
                continue
            results[name] = inprocess(args, database, mix)
            log(f"in-process {name}: " + ", ".join(
                f"{f} {results[name][f]['none']} -> {results[name][f]['task']} "
                f"(ratio {results[name][f]['ratio_of_medians']}, paired {results[name][f]['paired_min']}-"
                f"{results[name][f]['paired_max']})" for f in ("cpu_ms_per_run", "wall_ms_per_run", "sql_per_run")))
    if args.interleave_runs:
        common.write_results(args.output, {"command": "bench/alerts_overhead.py " + " ".join(sys.argv[1:]),
                                           "parameters": vars(args), "results": results}, started_version)
        return
    print(f"\nIn-process A/B, the executor's own work per run, {args.blocks} blocks of {args.block} runs per variant")
    common.print_table(["db/mix", "cpu ms none", "cpu ms task", "cpu ratio", "paired range", "wall ms none",
                        "wall ms task", "wall ratio", "sql none", "sql task"],
                       [[name, r["cpu_ms_per_run"]["none"], r["cpu_ms_per_run"]["task"],
                         r["cpu_ms_per_run"]["ratio_of_medians"],
                         f"{r['cpu_ms_per_run']['paired_min']}-{r['cpu_ms_per_run']['paired_max']}",
                         r["wall_ms_per_run"]["none"], r["wall_ms_per_run"]["task"],
                         r["wall_ms_per_run"]["ratio_of_medians"], r["sql_per_run"]["none"], r["sql_per_run"]["task"]]
                        for name, r in results.items()])
    common.write_results(args.output, {"command": "bench/alerts_overhead.py " + " ".join(sys.argv[1:]),
                                       "parameters": vars(args), "results": results}, started_version)


FIGURES = ("wall_per_second", "steady_per_second", "worker_cpu_ms_per_run")


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": len(rounds)}
    for figure in FIGURES:
        values = [r[figure] for r in rounds if r[figure] is not None]
        out[figure] = common.median(values) if values else None
        out[figure + "_all"] = values
    for figure in ("sql", "commits", "redis commands", "redis round trips"):
        out["executor_" + figure.replace(" ", "_") + "_per_run"] = common.median(
            [r["executor_per_run"].get(figure, 0) for r in rounds])
    out["rq_loop_redis_commands_per_run"] = common.median([r["rq_loop_per_run"].get("redis commands", 0) for r in rounds])
    alerts = [r["alerts_cpu_seconds"] for r in rounds if r["alerts_cpu_seconds"] is not None]
    out["alerts_cpu_seconds"] = common.median(alerts) if alerts else None
    out["load_1min"] = [r["load_1min"] for r in rounds]
    return out


def compare(runs: dict[str, list[dict[str, Any]]], database: str, mix: str, rules: str) -> dict[str, Any]:
    """Ratios of a rules variant to `none`: of the medians, and the median and range of per-group ratios."""
    mine, base = runs[f"{database}/{mix}/{rules}"], runs[f"{database}/{mix}/none"]
    out: dict[str, Any] = {}
    for figure in FIGURES:
        pairs = [common.ratio(a[figure], b[figure]) for a, b in zip(mine, base) if a[figure] and b[figure]]
        out[figure] = {"ratio_of_medians": common.ratio(common.median([r[figure] for r in mine]),
                                                        common.median([r[figure] for r in base])),
                       "paired_median": common.median(pairs) if pairs else None,
                       "paired_min": min(pairs) if pairs else None, "paired_max": max(pairs) if pairs else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200, help="N runs per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds per variant (medians reported)")
    parser.add_argument("--databases", default=f"sqlite,{common.DEFAULT_POSTGRES_URL}",
                        help="comma-separated: 'sqlite' and/or Postgres URLs (a private schema in each)")
    parser.add_argument("--mixes", default=",".join(MIXES), help=f"comma-separated of {', '.join(MIXES)}")
    parser.add_argument("--rules", default=",".join(RULE_VARIANTS), help="comma-separated of none, task, default")
    parser.add_argument("--default-mixes", default="fail",
                        help="the mixes in which the `default` rule variant runs (comma-separated; 'all')")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--no-alerts-worker-in-none", action="store_true",
                        help="the first attempt's set-up: no alerts process in the `none` rounds (a deployment"
                             " always runs it, for its channels and the watchdog)")
    parser.add_argument("--output", default=None, help="results file name in bench/results/ (default"
                                                        " alerts_overhead, alerts_overhead_inprocess)")
    parser.add_argument("--inprocess", action="store_true",
                        help="instead: the executor's own cost in this process, none/task alternating in blocks")
    parser.add_argument("--blocks", type=int, default=12, help="--inprocess: blocks per variant")
    parser.add_argument("--block", type=int, default=40, help="--inprocess: runs per block")
    parser.add_argument("--interleave-runs", type=int, default=0,
                        help="--inprocess: instead of blocks, N runs per variant alternating run by run (the"
                             " executor's job function called directly)")
    args = parser.parse_args()
    args.output = args.output or ("alerts_overhead_inprocess" if args.inprocess else "alerts_overhead")
    started_version = common.code_version()
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    mixes = [m for m in args.mixes.split(",") if m]
    if args.inprocess:
        inprocess_main(args, databases, mixes, started_version)
        return
    variants = [v for v in args.rules.split(",") if v]
    if "none" not in variants:
        variants.insert(0, "none")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    label = {d: "sqlite" if d == "sqlite" else "postgres" for d in databases}
    default_mixes = mixes if args.default_mixes == "all" else args.default_mixes.split(",")

    def variants_of(mix: str) -> list[str]:
        return [v for v in variants if v != "default" or mix in default_mixes]

    runs: dict[str, list[dict[str, Any]]] = {f"{label[d]}/{m}/{v}": [] for d in databases for m in mixes
                                             for v in variants_of(m)}
    for repeat in range(args.repeat):
        for database in databases:
            for mix in mixes:
                order = variants_of(mix)
                order = order[repeat % len(order):] + order[:repeat % len(order)]
                for rules in order:  # interleaved, adjacent in time, order rotating with the repeat
                    name = f"{label[database]}/{mix}/{rules}"
                    result = one_round(args, database, mix, rules, url)
                    runs[name].append(result)
                    log(f"round {repeat + 1} {name}: wall {result['wall_per_second']}/s steady "
                        f"{result['steady_per_second']}/s cpu {result['worker_cpu_ms_per_run']} ms/run, executor "
                        f"sql {result['executor_per_run'].get('sql')} redis {result['executor_per_run'].get('redis commands')}"
                        f" alerts cpu {result['alerts_cpu_seconds']} s, load {result['load_1min']}")
    summary = {name: summarise(items) for name, items in runs.items()}
    ratios = {f"{label[d]}/{m}/{v}": compare(runs, label[d], m, v)
              for d in databases for m in mixes for v in variants_of(m) if v != "none"}
    print(f"\nOne worker, {args.jobs} runs per round, medians of {args.repeat}; alerts process in `none`: "
          f"{'no' if args.no_alerts_worker_in_none else 'yes'}")
    common.print_table(["variant", "wall/s", "steady/s", "cpu ms/run", "sql/run", "commits/run", "redis/run",
                        "alerts cpu s", "ratio wall", "ratio steady", "ratio cpu (paired range)"],
                       [[name, s["wall_per_second"], s["steady_per_second"], s["worker_cpu_ms_per_run"],
                         s["executor_sql_per_run"], s["executor_commits_per_run"], s["executor_redis_commands_per_run"],
                         s["alerts_cpu_seconds"],
                         ratios.get(name, {}).get("wall_per_second", {}).get("ratio_of_medians"),
                         ratios.get(name, {}).get("steady_per_second", {}).get("ratio_of_medians"),
                         "" if name not in ratios else
                         f"{ratios[name]['worker_cpu_ms_per_run']['ratio_of_medians']} "
                         f"({ratios[name]['worker_cpu_ms_per_run']['paired_min']}-"
                         f"{ratios[name]['worker_cpu_ms_per_run']['paired_max']})"]
                        for name, s in summary.items()])
    print(f"webhook requests received: {Accept.received}")
    common.write_results(args.output, {"command": "bench/alerts_overhead.py " + " ".join(sys.argv[1:]),
                                       "parameters": vars(args), "summary": summary, "ratios_to_none": ratios,
                                       "runs": runs, "webhook_requests": Accept.received}, started_version)
    server.shutdown()


if __name__ == "__main__":
    main()
