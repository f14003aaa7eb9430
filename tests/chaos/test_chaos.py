"""The chaos test: web, three workers and two schedulers from the Procfile on SQLite and Postgres; for a
minute or more one random fault every few seconds (kill -9 of a busy worker or of the active scheduler,
SIGSTOP of a busy worker for 15 or 25 s, Redis restarted empty, FLUSHALL, task edits and toggles through
the API); then every task's full log is checked against the exact grid it owes.

Replay or lengthen a run with CHIME_CHAOS_SEED and CHIME_CHAOS_SECONDS (`make chaos SEEDS="1 2 3"`).
"""
from __future__ import annotations

import os
import random
import shutil
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.audit import FINAL, audit
from tests.chaos.cluster import API_TOKEN, Api, Cluster
from tests.chaos.faults import Chaos, now
from tests.chaos.grid import Change, State, Timeline, grid
from tests.chaos.hits import HitServer
from tests.chaos.report import details, dropped_occurrences, figures, log_lines, read_recovered, read_runs
from tests.engine_fixtures import Engine, wait_for
from tests.services import RedisServer, free_port

DEFAULT_SEED = 20261130
DEFAULT_SECONDS = 60.0  # make test; make chaos runs longer (CHIME_CHAOS_SECONDS)
SEED = int(os.environ.get("CHIME_CHAOS_SEED", DEFAULT_SEED))
SECONDS = float(os.environ.get("CHIME_CHAOS_SECONDS", DEFAULT_SECONDS))
LONG_RUN_SECONDS = 180
FAULT_GAP_SECONDS = (4.0, 10.0)
RECONCILE_INTERVAL_SECONDS = 5
HORIZON_AFTER_FAULTS_SECONDS = 5
SETTLE_SECONDS = 300
QUIESCE_SECONDS = 60
START_SECONDS = 90
WORKERS, SCHEDULERS = 3, 2
# Lets http_request reach the test's hit server on 127.0.0.1 (loopback is refused by default).
EGRESS_ENV = {"CHIME_EGRESS_ALLOW": "127.0.0.1"}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "chaos"

pytestmark = [
    pytest.mark.engine,
    pytest.mark.chaos,
    pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True),
    pytest.mark.timeout(int(SECONDS) + START_SECONDS + SETTLE_SECONDS + 300),
]


def task_mix() -> dict[str, int]:
    """How many tasks of each type: 23 for the short run, 60 (as in the issue) for a long one."""
    if SECONDS < LONG_RUN_SECONDS:
        return {"INTERVAL": 12, "CRON": 3, "ONE_TIME": 8}
    return {"INTERVAL": 36, "CRON": 8, "ONE_TIME": 16}


def task_body(rng: random.Random, kind: str, n: int, hits: HitServer) -> dict[str, Any]:
    name = f"chaos-{kind.lower()}-{n}"
    delay = rng.choice([0.0, 0.0, round(rng.uniform(0.2, 1.0), 2)])
    body = {"name": name, "job": "http_request", "args": {"url": hits.url(name, delay), "timeout_seconds": 60},
            "schedule_type": kind, "max_retries": 3, "retry_backoff_seconds": 1, "timeout_seconds": 120,
            "overlap": rng.choice(["SKIP", "ALLOW"]), "misfire_grace_seconds": rng.choice([300, 300, 3])}
    if kind == "INTERVAL":
        body["interval_seconds"] = rng.randint(2, 7)
    elif kind == "CRON":
        body["cron"] = "* * * * *"
    else:
        body["run_at"] = datetime.fromtimestamp(time.time() + rng.uniform(3, SECONDS - 2)).astimezone().isoformat()
    return body


def create_tasks(api: Api, rng: random.Random, hits: HitServer) -> list[Timeline]:
    timelines = []
    for kind, count in task_mix().items():
        for n in range(count):
            before = now()
            status, task = api.call("POST", "/api/tasks/", task_body(rng, kind, n, hits))
            assert status == 201, task
            state = State(True, task.get("interval_seconds"), task.get("cron"))
            run_at = datetime.fromisoformat(task["run_at"]) if task.get("run_at") else None
            timelines.append(Timeline(task["id"], task["name"], kind, datetime.fromisoformat(task["created_at"]),
                                      run_at, [Change(before, now(), state, "created")]))
    return timelines


def start_system(engine: Engine, cluster: Cluster) -> Api:
    port = free_port()
    engine.env.update({"RECONCILE_INTERVAL_SECONDS": str(RECONCILE_INTERVAL_SECONDS), "API_TOKENS": API_TOKEN,
                       "PORT": str(port), "WEB_CONCURRENCY": "2", **EGRESS_ENV})
    cluster.start("web", "web")
    for n in range(1, WORKERS + 1):
        cluster.start(f"w{n}", "worker")
    for n in range(1, SCHEDULERS + 1):
        cluster.start(f"s{n}", "scheduler")
    api = Api(f"http://127.0.0.1:{port}")
    wait_for(lambda: cluster.workers_registered() >= WORKERS and cluster.schedulers_beating() >= SCHEDULERS,
             START_SECONDS, "the workers and schedulers to start", engine)
    wait_for(lambda: api.call("GET", "/api/tasks/")[0] == 200, START_SECONDS, "the web process to answer", engine)
    return api


def settled(timelines: list[Timeline], horizon: datetime) -> bool:
    """Nothing running or owed a retry, and every task's log has reached the horizon."""
    runs = read_runs()
    attempts = {(r.task_id, r.scheduled_for, r.attempt) for r in runs}
    if any(r.status not in FINAL and r.status != "RETRYING" for r in runs):
        return False
    if any((r.status == "RETRYING" or r.retry_at) and (r.task_id, r.scheduled_for, r.attempt + 1) not in attempts
           for r in runs):
        return False
    for timeline in timelines:
        mine = [r.scheduled_for for r in runs if r.task_id == timeline.task_id and r.trigger != "MANUAL"]
        owed = [timeline.run_at] if timeline.schedule_type == "ONE_TIME" else [p.at for p in grid(timeline, horizon)]
        if owed and not any(at >= owed[-1] for at in mine):
            return False
    return True


def settle(timelines: list[Timeline], horizon: datetime) -> bool:
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        if now() > horizon and settled(timelines, horizon):
            time.sleep(RECONCILE_INTERVAL_SECONDS + 2)  # one more reconcile pass: a late repair would show
            return True
        time.sleep(2)
    return False


def save_artifacts(stem: str, report: str, log_dir: Path) -> None:
    """Keep the report and every process log under test-artifacts/chaos/ (pytest's tmp dirs do not last)."""
    logs = ARTIFACTS / f"{stem}-logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    for path in log_dir.glob("*.log"):
        shutil.copy(path, logs / path.name)
    (ARTIFACTS / f"{stem}.txt").write_text(report)


def quiesce(cluster: Cluster) -> None:
    """Stop the schedulers, then let the workers finish what is queued, so the log stops moving
    (a run left RUNNING for good is reported as stuck, not waited for)."""
    for slot in cluster.running("scheduler"):
        cluster.stop(slot)
    deadline = time.monotonic() + QUIESCE_SECONDS
    while time.monotonic() < deadline:
        if cluster.queued() == 0 and not any(r.status == "RUNNING" for r in read_runs()):
            return
        time.sleep(1)


def test_no_occurrence_is_lost_or_doubled_under_random_faults(
        engine: Engine, engine_app: Any, engine_redis: RedisServer, engine_database_url: str) -> None:
    database = "sqlite" if engine_database_url.startswith("sqlite") else "postgres"
    print(f"chaos: seed={SEED} db={database} seconds={SECONDS:g} (replay: CHIME_CHAOS_SEED={SEED} "
          f"CHIME_CHAOS_SECONDS={SECONDS:g})", file=sys.stderr)
    stem = f"{database}-seed{SEED}"
    hits = HitServer()
    hits.start()
    cluster = Cluster(engine, engine_redis)
    chaos: Chaos | None = None
    try:
        api = start_system(engine, cluster)
        timelines = create_tasks(api, random.Random(f"{SEED}-tasks"), hits)
        chaos = Chaos(cluster, api, SEED, timelines)
        chaos.run(SECONDS, FAULT_GAP_SECONDS)
        chaos.undo_all()
        horizon = now() + timedelta(seconds=HORIZON_AFTER_FAULTS_SECONDS)
        converged = settle(timelines, horizon)
        quiesce(cluster)
        runs, recovered = read_runs(), read_recovered()
        lines = log_lines(engine.log_dir)
        result = audit(timelines, runs, recovered, hits.snapshot(), horizon, dropped_occurrences(lines))
    except BaseException as error:
        events = "\n".join(e.describe() for e in chaos.events) if chaos else ""
        save_artifacts(stem, f"chaos: seed={SEED} db={database} aborted: {error!r}\n{events}\n", engine.log_dir)
        raise
    finally:
        hits.stop()
    line = figures(SEED, database, SECONDS, chaos.injected, result) + f" api_errors={len(chaos.api_errors)}" + (
        "" if converged else " (did not settle)")
    report = "\n".join([details(result, runs, recovered, chaos.events, lines), "API errors:", *chaos.api_errors])
    save_artifacts(stem, line + "\n" + report + "\n", engine.log_dir)
    print(line, file=sys.stderr)
    bad = result.of("lost", "doubled", "stuck", "side_effect", "unexpected", "false_skip")
    assert not bad and not chaos.api_errors, f"{line}\n{report}"
