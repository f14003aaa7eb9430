"""Shared harness for the benchmarks: a private redis-server, a scratch database, the Procfile's
processes, bulk task creation, percentiles and result files.

Nothing here is imported by the test suite, and nothing here asserts timings.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis as redis_lib  # noqa: E402
from chime.schemas import task as task_schema  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
# Postgres runs get a private schema in this database (tests.services.PostgresSchema), dropped
# afterwards, so they never see the test suite's tables or another run's.
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
QUEUES = ("high", "default", "low")
STOP_TIMEOUT_SECONDS = 10


# -- small helpers ---------------------------------------------------------------------------------
def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def epoch_to_dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, timezone.utc)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def summary_ms(values_seconds: Iterable[float]) -> dict[str, Any]:
    """Return n, p50, p90, p99, max (and min) in milliseconds."""
    values = sorted(values_seconds)
    out: dict[str, Any] = {"n": len(values)}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        value = percentile(values, q)
        out[name] = None if value is None else round(value * 1000, 1)
    out["max"] = round(values[-1] * 1000, 1) if values else None
    out["min"] = round(values[0] * 1000, 1) if values else None
    return out


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b in (None, 0):
        return None
    return round(a / b, 3)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = [["" if c is None else (f"{c:.3f}" if isinstance(c, float) else str(c)) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    sys.stdout.flush()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from tests.services import redis_server_binary

    binary = redis_server_binary() or "redis-server"
    try:
        redis_version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        redis_version = "unknown"
    import rq
    import rq_scheduler  # noqa: F401
    import sqlalchemy
    from importlib.metadata import version

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "redis_server": redis_version,
        "rq": rq.__version__,
        "rq_scheduler": version("rq-scheduler"),
        "sqlalchemy": sqlalchemy.__version__,
        "loadavg_at_start": os.getloadavg(),
    }


ENGINE_PATHS = ("Procfile", "scheduler", "jobs", "webapp")


def code_version() -> dict[str, Any]:
    """The commit measured, and engine files that differ from it (other people edit the tree)."""
    if os.environ.get("CHIME_BENCH_COMMIT"):  # a run from an exported snapshot of that commit
        return {"commit": os.environ["CHIME_BENCH_COMMIT"], "dirty_engine_files": []}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *ENGINE_PATHS], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty_engine_files": None}
    return {"commit": commit, "dirty_engine_files": dirty}


def write_results(name: str, data: dict[str, Any], started_version: dict[str, Any] | None = None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    version = code_version()
    if started_version is not None and started_version != version:
        log(f"WARNING: the engine code changed during the run: {started_version} -> {version}")
        version = {**version, "changed_during_run_from": started_version}
    payload = {"benchmark": name, "recorded_at": utcnow().isoformat(), "code": version,
               "machine": machine_info(), **data}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    log(f"wrote {path.relative_to(ROOT)}")
    return path


# -- databases -------------------------------------------------------------------------------------
def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "postgresql+psycopg://"))


def fresh_schema() -> None:
    """Create the tables in the current app's (empty) database or private Postgres schema."""
    from chime.extensions import db

    db.create_all()


# -- processes -------------------------------------------------------------------------------------
from tests.engine_fixtures import procfile_command  # noqa: E402,F401  (one reader of the Procfile)


class Processes:
    """Start commands in their own process group (logs under `log_dir`), stop them by group id."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        out = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(["bash", "-c", "exec " + command], cwd=ROOT,
                                env={**self.env, **(extra_env or {})}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        out.close()
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            proc.wait()
            return
        try:
            proc.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def sleep_until(epoch: float) -> None:
    while True:
        left = epoch - time.time()
        if left <= 0:
            return
        time.sleep(min(left, 0.5))


# -- one benchmark environment ---------------------------------------------------------------------
class Env:
    """A private redis-server + a scratch database + the Flask app, torn down on exit.

    database_url None means a fresh SQLite file in a temp directory; with a Postgres URL the run
    gets a private schema in that database (tests.services.PostgresSchema), dropped on exit.
    """

    def __init__(self, database_url: str | None = None, keep: bool = False, redis_hz: int | None = None) -> None:
        self.requested_url = database_url
        self.keep = keep
        self.redis_hz = redis_hz
        self.stack = ExitStack()

    def __enter__(self) -> "Env":
        from tests.services import RedisServer
        from chime.config import normalise_database_url

        self.tmp = Path(tempfile.mkdtemp(prefix="chime-bench-"))
        if not self.keep:
            self.stack.callback(shutil.rmtree, self.tmp, True)
        self.redis_server = RedisServer(self.tmp)
        self.redis_server.start()
        self.stack.callback(self.redis_server.stop)
        self.redis = redis_lib.Redis.from_url(self.redis_server.url)
        if self.redis_hz:  # diagnostic only: how often redis-server's timers (and BLPOP timeouts) fire
            self.redis.config_set("hz", self.redis_hz)
        url = self.requested_url or f"sqlite:///{self.tmp / 'bench.sqlite3'}"
        if is_postgres(url):
            from tests.services import PostgresSchema

            schema = PostgresSchema(url)
            schema.create()
            self.stack.callback(schema.drop)
            url = schema.url
        self.database_url = normalise_database_url(url)
        self.kind = "postgres" if is_postgres(url) else "sqlite"
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_server.url,
            "SECRET_KEY": "bench",
            "CHIME_INSTANCE_PATH": str(self.tmp / "instance"),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        }
        # The bench process builds the same app the engine processes build from the environment.
        os.environ.update({k: self.env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CHIME_INSTANCE_PATH")})
        from webapp import create_app
        from chime.extensions import db

        self.app = create_app()
        self.ctx = self.app.app_context()
        self.ctx.push()
        self.stack.callback(self._close_app)
        fresh_schema()
        self.procs = Processes(self.env, self.tmp)
        self.stack.callback(self.procs.stop_all)
        self.db = db
        return self

    def _close_app(self) -> None:
        self.db.session.remove()
        self.db.engine.dispose()
        self.ctx.pop()

    def __exit__(self, *exc: Any) -> None:
        self.stack.close()

    # -- engine processes
    def start_scheduler(self, name: str = "scheduler") -> None:
        self.procs.start(name, procfile_command("scheduler"))

    def start_worker(self, name: str, burst: bool = False) -> subprocess.Popen:
        command = procfile_command("worker")
        if burst:
            command = command.replace("rq worker ", "rq worker --burst ", 1)
        return self.procs.start(name, command)

    def wait_engine_ready(self, workers: int, schedulers: int, timeout: float = 60) -> None:
        from rq import Worker

        from scheduler import health

        def ready() -> bool:
            beats = self.redis.hlen(health.SCHEDULER_HEARTBEAT_KEY)
            return len(Worker.all(connection=self.redis)) >= workers and beats >= schedulers

        try:
            wait_for(ready, timeout, f"{workers} worker(s) and {schedulers} scheduler(s)")
        except TimeoutError:
            for name in list(self.procs.procs):
                log(f"--- {name}\n{self.procs.tail(name)}")
            raise


# -- bulk task creation ----------------------------------------------------------------------------
TASK_DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in task_schema.DEFAULTS.items() if k != "depends_on"},  # what the API fills in
    "job": "noop", "max_retries": 0,  # benchmark tasks: a no-op, never retried
    "status": "PENDING", "last_status": None, "last_run_at": None, "version": 1,  # the model's column defaults
}


def bulk_create_tasks(rows: list[dict[str, Any]], now: datetime, chunk: int = 5000) -> list[Any]:
    """Insert Task rows with SQLAlchemy core, then put each task's pending occurrence in Redis.

    Each row needs at least name and schedule fields; ids are assigned 1..len(rows) (fresh schema).
    The pending occurrence is the one services.first_occurrence would give (triggers.first_fire_at
    of the task's schedule; in a fresh database no ONE_TIME task has run yet), memoised per distinct
    schedule, and is written as occ.save_jobs + a pipelined ZADD/HSET of SCHEDULED_KEY/PENDING_KEY:
    what occ.replace_pending does for one task, batched. next_run_at is stored as sync_schedule does.
    Returns the occurrences (None for a task with nothing pending).
    """
    from sqlalchemy import insert

    from chime import occurrence as occ
    from chime.triggers import Schedule, first_fire_at
    from chime.extensions import db, get_redis
    from chime.models import Task

    full: list[dict[str, Any]] = []
    occurrences: list[Any] = []
    first_fire: dict[Any, datetime | None] = {}
    for index, row in enumerate(rows, start=1):
        values = {**TASK_DEFAULTS, "id": index, "created_at": now, "updated_at": now, **row}
        schedule = Schedule(schedule_type=values["schedule_type"], timezone=values["timezone"],
                            run_at=values["run_at"], cron=values["cron"], interval_seconds=values["interval_seconds"],
                            start_at=values["start_at"], end_at=values["end_at"], anchor_at=values["created_at"])
        if schedule not in first_fire:
            first_fire[schedule] = first_fire_at(schedule, now)
        due_at = first_fire[schedule] if values["enabled"] else None
        occurrence = None if due_at is None else occ.Occurrence.of(SimpleNamespace(**values), due_at)
        values["next_run_at"] = due_at
        full.append(values)
        occurrences.append(occurrence)
    for start in range(0, len(full), chunk):  # core insert of the table: one multi-row INSERT per chunk
        db.session.execute(insert(Task.__table__), full[start:start + chunk])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(db.text("SELECT setval('tasks_id_seq', (SELECT max(id) FROM tasks))"))
        db.session.commit()
    put_pending(get_redis(), [o for o in occurrences if o is not None], chunk)
    return occurrences


def put_pending(connection: redis_lib.Redis, occurrences: Sequence[Any], chunk: int = 5000) -> None:
    from chime import occurrence as occ

    for start in range(0, len(occurrences), chunk):
        part = occurrences[start:start + chunk]
        occ.save_jobs(connection, part)
        with connection.pipeline(transaction=False) as pipe:
            pipe.zadd(occ.SCHEDULED_KEY, {o.job_id: occ.score_of(o.scheduled_for) for o in part})
            pipe.hset(occ.PENDING_KEY, mapping={o.task_id: o.job_id for o in part})
            pipe.execute()


def interval_rows(count: int, first_at: datetime, interval_seconds: int, spread_seconds: float,
                  **extra: Any) -> list[dict[str, Any]]:
    """`count` INTERVAL tasks whose first fires are spread evenly over [first_at, first_at + spread)."""
    step = spread_seconds / count if count else 0
    return [{"name": f"bench-{i}", "schedule_type": "INTERVAL", "interval_seconds": interval_seconds,
             "start_at": first_at + timedelta(seconds=i * step), **extra} for i in range(count)]


def queue_lengths(connection: redis_lib.Redis) -> dict[str, int]:
    with connection.pipeline(transaction=False) as pipe:
        for name in QUEUES:
            pipe.llen(f"rq:queue:{name}")
        return dict(zip(QUEUES, pipe.execute()))


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU seconds of a process and its reaped children (e.g. RQ work horses)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    # after the ")": state is index 0, utime 11, stime 12, cutime 13, cstime 14
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


class Recorder:
    """A consumer standing in for workers: pops every job the moment it is pushed and timestamps it.

    It blocks on BLPOP over the queues (a push wakes it at once) and then drains whatever else is
    queued with LPOP count, so one Lua batch of N pushes costs two round trips, not N.
    For Chime jobs it also does what a finished worker does to the bookkeeping the dispatcher reads
    (job status 'finished', in-flight marker removed), so overlap=SKIP does not hold back the next fire.
    """

    def __init__(self, url: str, mark_finished: bool) -> None:
        import threading

        self.connection = redis_lib.Redis.from_url(url)
        self.mark_finished = mark_finished
        self.seen: dict[str, float] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="recorder", daemon=True)

    def start(self) -> "Recorder":
        self.thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self.stopping.set()
        self.thread.join(timeout=5)
        return self.seen

    def _run(self) -> None:
        keys = [f"rq:queue:{q}" for q in QUEUES]
        while not self.stopping.is_set():
            item = self.connection.blpop(keys, timeout=0.2)
            if item is None:
                continue
            first_seen = time.time()
            with self.connection.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.lpop(key, 100000)
                drained = pipe.execute()
            drained_seen = time.time()
            ids = [item[1].decode()]
            self.seen[ids[0]] = first_seen
            for batch in drained:
                for raw in batch or []:
                    job_id = raw.decode()
                    ids.append(job_id)
                    self.seen[job_id] = drained_seen
            if self.mark_finished:
                self._finish(ids)

    def _finish(self, ids: list[str]) -> None:
        from chime import occurrence as occ

        with self.connection.pipeline(transaction=False) as pipe:
            for job_id in ids:
                due = occ.parse_job_id(job_id)
                if due is None:
                    continue
                pipe.hset(occ.JOB_KEY.format(job_id=job_id), "status", "finished")
                pipe.zrem(occ.INFLIGHT_KEY.format(task_id=due.task_id), job_id)
            pipe.execute()


def parse_rq_time(raw: bytes | str | None) -> float | None:
    """Epoch seconds of an RQ timestamp field ('2024-01-01T00:00:00.123456Z'), None when empty."""
    if not raw:
        return None
    from rq.utils import utcparse

    text = raw.decode() if isinstance(raw, bytes) else raw
    return utcparse(text).replace(tzinfo=timezone.utc).timestamp()


def job_fields(connection: redis_lib.Redis, job_ids: Sequence[str], *fields: str,
               chunk: int = 5000) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for start in range(0, len(job_ids), chunk):
        part = job_ids[start:start + chunk]
        with connection.pipeline(transaction=False) as pipe:
            for job_id in part:
                pipe.hmget(f"rq:job:{job_id}", *fields)
            for job_id, values in zip(part, pipe.execute()):
                out[job_id] = values
    return out


PLACEHOLDER_EPOCH = 4102444800  # 2100-01-01: far beyond any run, so nothing is due while jobs are added


def rq_scheduler_jobs(connection: redis_lib.Redis, count: int, func: Callable[[], Any]) -> list[str]:
    """Add `count` jobs with rq_scheduler.Scheduler.enqueue_at at a placeholder far-future time.

    Adding 10,000 jobs one by one takes seconds; `rescore` then gives them their real due times in
    one pipelined ZADD, exactly the score enqueue_at would have stored (calendar.timegm: whole
    seconds), so setup time does not eat into the lead before the first due time.
    """
    from rq_scheduler import Scheduler

    scheduler = Scheduler(connection=connection, queue_name="default")
    return [scheduler.enqueue_at(epoch_to_dt(PLACEHOLDER_EPOCH), func).id for _ in range(count)]


def rescore(connection: redis_lib.Redis, due: dict[str, float]) -> None:
    from rq_scheduler import Scheduler
    from rq_scheduler.utils import to_unix

    with connection.pipeline(transaction=False) as pipe:
        pipe.zadd(Scheduler.scheduled_jobs_key, {job_id: to_unix(epoch_to_dt(at)) for job_id, at in due.items()},
                  xx=True)
        pipe.execute()
