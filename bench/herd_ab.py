"""Herd before/after (issue 14): bench/herd.py run in two exported trees of the code, interleaved.

For each repeat and each database, one `bench/herd.py --tasks N --repeat 1` run in the `before` tree and one in the
`after` tree (the order alternates per repeat, so a trend in the machine's load does not favour one), each with its
own bare baseline; every run's JSON is collected and the medians per tree and database written to
bench/results/herd_before_after.json (this tree's). A tree is a directory holding the code to measure (e.g.
`git archive <commit> | tar -x -C <dir>`) and a file COMMIT naming it; both run with this interpreter.

Usage:  .venv/bin/python bench/herd_ab.py --before /tmp/herd-before --after /tmp/herd-after --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import log  # noqa: E402

DATABASE_FLAGS = {"sqlite": ["--postgres-url="], "postgres": ["--no-sqlite"]}
EXECUTOR = "scheduler.executor.execute"


def one_run(tree: Path, database: str, tasks: int) -> dict[str, Any]:
    commit = (tree / "COMMIT").read_text().strip()
    subprocess.run([sys.executable, "bench/herd.py", "--tasks", str(tasks), "--repeat", "1", *DATABASE_FLAGS[database]],
                   cwd=tree, env={**os.environ, "CHIME_BENCH_COMMIT": commit}, check=True)
    data = json.loads((tree / "bench" / "results" / "herd.json").read_text())
    [run] = next(iter(data["runs"].values()))
    return {**run, "code": data["code"], "recorded_at": data["recorded_at"]}


def median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def summarise(items: list[dict[str, Any]]) -> dict[str, Any]:
    def each(get: Any) -> list[Any]:
        return [get(item) for item in items]

    def executor(item: dict[str, Any]) -> dict[str, float]:
        return item["chime"]["per_execution"]["workers_by_bucket"].get(EXECUTOR, {})

    def outside(item: dict[str, Any]) -> dict[str, float]:
        return item["chime"]["per_execution"]["workers_by_bucket"].get("outside a job", {})

    def worker_cpu_ms(item: dict[str, Any]) -> float:
        cpu = item["chime"]["cpu_seconds"]
        return 1000 * (cpu.get("worker1", 0) + cpu.get("worker2", 0)) / item["chime"]["tasks"]

    return {
        "code": items[0]["code"],
        "last_success_s": median(each(lambda i: i["chime"]["last_success_s"])),
        "last_success_runs": each(lambda i: i["chime"]["last_success_s"]),
        "bare_drain_s": median(each(lambda i: i["bare"]["drain_s"])), "bare_drain_runs": each(lambda i: i["bare"]["drain_s"]),
        "bare_steady_s": median(each(lambda i: i["bare"]["steady_s"])),
        "ratio": median(each(lambda i: i["ratio"])), "ratio_runs": each(lambda i: i["ratio"]),
        "start_lag_p50_ms": median(each(lambda i: i["chime"]["start_lag_ms"]["p50"])),
        "start_lag_p99_ms": median(each(lambda i: i["chime"]["start_lag_ms"]["p99"])),
        "last_dispatched_s": median(each(lambda i: i["chime"]["last_dispatched_s"])),
        "load_at_minute": each(lambda i: i["chime"]["load_at_minute"]),
        "executions_by_status": each(lambda i: i["chime"]["executions_by_status"]),
        "workers_cpu_ms_per_execution": median(each(worker_cpu_ms)),
        "executor_sql": median(each(lambda i: executor(i).get("sql"))),
        "executor_commits": median(each(lambda i: executor(i).get("commits"))),
        "executor_redis_commands": median(each(lambda i: executor(i).get("redis commands"))),
        "executor_redis_round_trips": median(each(lambda i: executor(i).get("redis round trips"))),
        "outside_job_redis_commands": median(each(lambda i: outside(i).get("redis commands"))),
        "outside_job_redis_round_trips": median(each(lambda i: outside(i).get("redis round trips"))),
        "redis_commandstats_per_execution": median(each(lambda i: i["chime"]["redis_commandstats"]["per_item"])),
        "redis_inside_scripts_per_execution": median(
            each(lambda i: i["chime"]["redis_commands_inside_scripts_per_execution"])),
        "bare_redis_commands_per_job": median(each(lambda i: i["bare"]["redis_commandstats"]["per_item"])),
        "executor_statements_first_run": items[0]["chime"]["per_execution"]["worker_statements"].get(EXECUTOR),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args()
    trees = {"before": args.before, "after": args.after}
    runs: dict[str, list[dict[str, Any]]] = {}
    for repeat in range(1, args.repeat + 1):
        for database in args.databases.split(","):
            order = ("before", "after") if repeat % 2 else ("after", "before")
            for name in order:
                run = one_run(trees[name], database, args.tasks)
                runs.setdefault(f"{name}-{database}", []).append({**run, "repeat": repeat})
                log(f"run {repeat} {name} {database}: ratio {run['ratio']}, load {run['chime']['load_at_minute']}")
    summary = {key: summarise(items) for key, items in sorted(runs.items())}
    common.write_results("herd_before_after", {
        "command": "bench/herd_ab.py " + " ".join(sys.argv[1:]),
        "trees": {name: (tree / "COMMIT").read_text().strip() for name, tree in trees.items()},
        "summary": summary, "runs": runs})


if __name__ == "__main__":
    main()
