"""Alert rules' cost to the executor: executions per second of ONE worker with a rule and a webhook channel
on every task, against the same run with no rules (issue 13: not slower by more than 5 %).

For each job kind -- `noop` (every run a SUCCESS) and `fail` (every run a final FAILED: every one writes an
alert outbox row in its record transaction) -- N manual runs of one task are pushed (as throughput.py does),
then the Procfile worker command runs them with --burst and is timed until it exits.
"rules": the task has a rule (every task event) to a webhook channel whose receiver is a local http.server
accepting everything, and the Procfile's `alerts` worker runs meanwhile (draining the outbox, delivering).
"none": no rule, no channel, no alerts worker (with --alerts-worker-always: the alerts worker runs, idle of
rules). Variants are interleaved; medians of --repeat rounds.

Usage (from the repo root):  .venv/bin/python bench/alerts_overhead.py --jobs 1000 --repeat 3
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import log  # noqa: E402
from bench.throughput import steady_seconds, timed_burst  # noqa: E402

TASK_EVENTS = ["failed", "retrying", "failing", "recovered", "skipped"]


class Accept(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Accept.received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def wait_registered(env: Any) -> None:
    from rq import Worker

    common.wait_for(lambda: any("alerts" in w.queue_names() for w in Worker.all(connection=env.redis)), 60,
                    "the alerts worker to register")
    time.sleep(1.0)  # its first sweep and watchdog pass


def one_run(args: argparse.Namespace, job: str, with_rules: bool, receiver_url: str) -> dict[str, Any]:
    from cryptography.fernet import Fernet
    from sqlalchemy import func, select

    from chime import alert_rules, channels
    from chime import occurrence as occ
    from chime.extensions import db
    from chime.models import AlertOutbox, Delivery, Execution, Task
    from chime.unit_of_work import unit_of_work

    key = Fernet.generate_key().decode()
    os.environ.update(CHIME_SECRETS_KEY=key, CHIME_EGRESS_ALLOW="127.0.0.1/32")
    with common.Env(None if args.database == "sqlite" else args.database) as env:
        env.env.update(CHIME_SECRETS_KEY=key, CHIME_EGRESS_ALLOW="127.0.0.1/32")
        now = common.utcnow()
        common.bulk_create_tasks([{"name": "bench-alerts", "job": job, "args": {"message": "bench"} if job == "fail" else {},
                                   "schedule_type": "INTERVAL", "interval_seconds": 86400,
                                   "start_at": now + timedelta(days=1), "overlap": "ALLOW", "notify": "ALWAYS"}], now)
        task = db.session.get(Task, 1)
        if with_rules:
            with unit_of_work():
                channel = channels.create_channel({"name": "bench-hook", "kind": "webhook",
                                                   "config": {"url": receiver_url}, "secrets": {"secret": "s" * 32}})
                alert_rules.create_rule({"task_id": task.id, "events": TASK_EVENTS, "channel_ids": [channel.id]})
        if with_rules or args.alerts_worker_always:
            env.procs.start("alerts", common.procfile_command("alerts"))
            wait_registered(env)  # its start-up (building the app) is not timed
        task = db.session.get(Task, 1)
        job_ids = [occ.push_now(env.redis, occ.Occurrence.of(task, now + timedelta(microseconds=i), trigger="MANUAL"),
                                now + timedelta(microseconds=i)) for i in range(args.jobs)]
        db.session.commit()
        started = time.monotonic()
        proc = env.start_worker("worker", burst=True)
        wall = timed_burst(proc, started, args.timeout)
        env.procs.procs.pop("worker", None)
        db.session.remove()
        finished = db.session.scalar(select(func.count()).select_from(Execution)
                                     .where(Execution.status.in_(["SUCCESS", "FAILED"])))
        outbox_left = db.session.scalar(select(func.count()).select_from(AlertOutbox))
        deliveries = db.session.scalar(select(func.count()).select_from(Delivery))
        outbox_events = dict(db.session.execute(select(AlertOutbox.event, func.count()).group_by(AlertOutbox.event)).tuples().all())
        delivery_events = dict(db.session.execute(select(Delivery.event, func.count()).group_by(Delivery.event)).tuples().all())
        steady = steady_seconds(env.redis, job_ids)
        if finished != args.jobs:
            log(f"WARNING: {finished} finished executions for {args.jobs} jobs\n{env.procs.tail('worker')}")
        return {"wall_per_second": round(args.jobs / wall, 1),
                "steady_per_second": round(args.jobs / steady, 1) if steady else None,
                "executions": finished, "outbox_left_at_end": outbox_left, "deliveries_at_end": deliveries,
                "outbox_events_left": outbox_events, "delivery_events": delivery_events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000, help="N runs per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--database", default="sqlite", help="'sqlite' or a Postgres URL (a private schema in it)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--alerts-worker-always", action="store_true",
                        help="run the alerts worker in the no-rules rounds too (as a deployment does for its channels"
                             " and watchdog), so the ratio isolates the rules' own cost")
    args = parser.parse_args()
    started_version = common.code_version()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    variants = [(job, rules) for job in ("noop", "fail") for rules in (False, True)]
    runs: dict[str, list[dict[str, Any]]] = {f"{job}-{'rules' if rules else 'none'}": [] for job, rules in variants}
    for repeat in range(args.repeat):
        for job, rules in variants:  # interleaved, so machine noise spreads over all variants
            name = f"{job}-{'rules' if rules else 'none'}"
            runs[name].append(one_run(args, job, rules, url))
            log(f"round {repeat + 1} {name}: {runs[name][-1]}")
    summary: dict[str, Any] = {name: {"wall_per_second_median": common.median([r["wall_per_second"] for r in items]),
                                      "steady_per_second_median": common.median(
                                          [r["steady_per_second"] for r in items if r["steady_per_second"]])}
                               for name, items in runs.items()}
    for job in ("noop", "fail"):
        rules, none = summary[f"{job}-rules"], summary[f"{job}-none"]
        rules["wall_ratio_to_none"] = common.ratio(rules["wall_per_second_median"], none["wall_per_second_median"])
        rules["steady_ratio_to_none"] = common.ratio(rules["steady_per_second_median"],
                                                     none["steady_per_second_median"])
    print(f"\nExecutor with a rule + webhook channel vs none, one worker, {args.jobs} runs, median of {args.repeat}")
    common.print_table(["variant", "wall/s", "steady/s", "wall ratio", "steady ratio"],
                       [[n, s["wall_per_second_median"], s["steady_per_second_median"],
                         s.get("wall_ratio_to_none", ""), s.get("steady_ratio_to_none", "")] for n, s in summary.items()])
    print(f"webhook requests received: {Accept.received}")
    common.write_results("alerts_overhead", {"command": "bench/alerts_overhead.py " + " ".join(sys.argv[1:]),
                                             "parameters": vars(args), "summary": summary, "runs": runs,
                                             "webhook_requests": Accept.received}, started_version)
    server.shutdown()


if __name__ == "__main__":
    main()
