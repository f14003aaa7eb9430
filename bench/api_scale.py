"""The API at scale (issue 14): 100,000 tasks and 10,000,000 execution rows, the endpoints people hit.

Three steps, each its own command:

  build    fill a database once: SQLite (a file kept at --keep, reused by later runs) or Postgres
           (a schema of its own in the test database, kept by name with --pg-schema). Rows go in
           with executemany in big chunks (SQLite) or COPY (Postgres), tables created by the models
           of the tree that builds them.
  measure  run by the tree being measured (`python <tree>/bench/api_scale.py measure ...`): makes
           the database's indexes those of that tree's models (creates the missing, drops the extra
           ones on the four tables read here), ANALYZEs, then times every endpoint through the Flask
           test client (an API_TOKENS bearer token for /api, a signed-in admin session for the
           admin pages; no HTTP server, no network), --requests requests each, and optionally a log
           retention prune of the oldest --prune-rows rows (batched; the longest batch is reported:
           the longest time any lock is held).
  run      build if needed, then measure BASE (a detached git worktree) and this tree, interleaved
           for --rounds rounds, and write bench/results/api_scale_<db>.json.

The prune at the end deletes the oldest rows of the kept data (--prune-rows-before and --prune-rows): a
second run measures fewer rows. Delete the SQLite file (or DROP SCHEMA the Postgres one) to rebuild the
full 10M, or pass --prune-rows 0 to keep them.

  .venv/bin/python bench/api_scale.py run --db sqlite --keep /tmp/chime-api-scale.sqlite3 --base HEAD
  .venv/bin/python bench/api_scale.py run --db postgres --pg-schema chime_api_scale --base HEAD

Data: tasks named "<word>-<word>-<n>" over 6 jobs, CRON/INTERVAL/ONE_TIME, 90 % enabled; executions
spread evenly over the last 30 days (ids in time order, as the engine writes them), for random tasks,
93 % SUCCESS, 4 % FAILED, 1.5 % RETRYING, 1.5 % SKIPPED, messages with words; a notification for
every FAILED run (about 400,000 at 10M rows), 5 % unread.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
WORDS = ("alpha", "billing", "backup", "cleanup", "daily", "report", "sync", "invoice", "mailer", "cache",
         "warmup", "export", "import", "audit", "metrics", "rollup", "digest", "purge", "index", "crawler",
         "thumbnail", "payments", "ledger", "search", "feeds", "orders", "users", "sessions", "queue", "probe")
JOBS = ("echo", "http_request", "shell", "noop", "sleep", "fail")
STATUS_WEIGHTS = (("SUCCESS", 930), ("FAILED", 40), ("RETRYING", 15), ("SKIPPED", 15))
DAYS = 30
ANCHOR = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)  # the newest row: the hour of the build
TABLES_MEASURED = ("tasks", "executions", "notifications", "deliveries", "audit_events")


def log(message: str) -> None:
    print(f"[api_scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ data
def task_rows(count: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for i in range(1, count + 1):
        kind = rng.choices(("CRON", "INTERVAL", "ONE_TIME"), (60, 35, 5))[0]
        enabled = rng.random() < 0.9
        rows.append({
            "id": i, "name": f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}", "job": rng.choice(JOBS),
            "schedule_type": kind, "cron": "*/5 * * * *" if kind == "CRON" else None,
            "interval_seconds": 600 if kind == "INTERVAL" else None,
            "run_at": ANCHOR + timedelta(days=1) if kind == "ONE_TIME" else None,
            "enabled": enabled, "status": rng.choices(("SUCCESS", "FAILED", "PENDING"), (90, 5, 5))[0],
            "last_status": "SUCCESS", "next_run_at": ANCHOR + timedelta(seconds=i) if enabled else None,
        })
    return rows


def build(db_kind: str, url: str, tasks: int, executions: int, seed: int) -> None:
    """Create the schema with this tree's models and fill it."""
    os.environ.setdefault("SECRET_KEY", "bench")
    from webapp import create_app
    from chime.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "REDIS_URL": "redis://127.0.0.1:1/0"})
    rng = random.Random(seed)
    started = time.perf_counter()
    with app.app_context():
        db.create_all()
        rows = task_rows(tasks, rng)
        if db_kind == "sqlite":
            _build_sqlite(db, rows, executions, rng)
        else:
            _build_postgres(db, rows, executions, rng)
        db.session.remove()
        db.engine.dispose()
    log(f"built {tasks} tasks and {executions} executions in {time.perf_counter() - started:.0f} s")


TASK_COLUMNS = ("id", "name", "description", "job", "args", "schedule_type", "run_at", "cron", "interval_seconds",
                "timezone", "enabled", "max_retries", "retry_backoff_seconds", "timeout_seconds", "overlap",
                "misfire_grace_seconds", "queue", "notify", "status", "last_status", "next_run_at", "version",
                "created_at", "updated_at")
EXEC_COLUMNS = ("id", "task_id", "task_name", "status", "attempt", "trigger", "scheduled_for", "started_at",
                "finished_at", "duration_ms", "message", "created_at")
NOTE_COLUMNS = ("id", "task_id", "execution_id", "level", "title", "message", "read", "created_at", "count")


def _task_values(row: dict[str, Any], fmt) -> tuple:
    created = ANCHOR - timedelta(days=DAYS + 1)
    return (row["id"], row["name"], "", row["job"], "{}", row["schedule_type"], fmt(row["run_at"]), row["cron"],
            row["interval_seconds"], "UTC", row["enabled"], 0, 60, 300, "SKIP", 300, "default", "ON_FAILURE",
            row["status"], row["last_status"], fmt(row["next_run_at"]), 1, fmt(created), fmt(created))


def _sqlite_time(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _pg_time(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f+00")


CHUNK_ROWS = 1_000_000


def _status_sql(r: str) -> str:
    """The status of a row from `r`, a random integer in 0..999: 93 % SUCCESS, 4 % FAILED, 1.5 % each of the others."""
    return (f"CASE WHEN {r} < 930 THEN 'SUCCESS' WHEN {r} < 970 THEN 'FAILED' "
            f"WHEN {r} < 985 THEN 'RETRYING' ELSE 'SKIPPED' END")


MESSAGE_SQL = """CASE g.status
    WHEN 'SUCCESS' THEN CASE g.m WHEN 0 THEN 'ok' WHEN 1 THEN 'HTTP 200 from ' || g.w || '.example'
                                 WHEN 2 THEN 'exit status 0' ELSE 'done in ' || g.dur || ' ms' END
    WHEN 'FAILED' THEN CASE g.m WHEN 0 THEN 'HTTP 503 from ' || g.w || '.example' WHEN 1 THEN 'timed out after 300 s'
                                WHEN 2 THEN 'exit status 1: ' || g.w || ' not found'
                                ELSE 'ConnectionError: ' || g.w || '.example refused' END
    WHEN 'RETRYING' THEN 'HTTP 502 from ' || g.w || '.example; retrying'
    ELSE 'skipped: overlap' END"""


def _build_sqlite(db: Any, tasks: list[dict[str, Any]], executions: int, rng: random.Random) -> None:
    """Tasks by executemany; executions generated by SQLite itself (a recursive CTE per million rows)."""
    raw = db.engine.raw_connection()
    connection = raw.driver_connection
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-400000")
    indexes = _drop_indexes_sqlite(connection, ("executions", "notifications"))  # built once at the end
    marks = ", ".join("?" * len(TASK_COLUMNS))
    connection.executemany(f"INSERT INTO tasks ({', '.join(TASK_COLUMNS)}) VALUES ({marks})",
                           [_task_values(t, _sqlite_time) for t in tasks])
    connection.execute("CREATE TEMP TABLE words (k INTEGER PRIMARY KEY, w TEXT)")
    connection.executemany("INSERT INTO words VALUES (?, ?)", list(enumerate(WORDS)))
    first_epoch = int((ANCHOR - timedelta(days=DAYS)).timestamp())
    step_us = DAYS * 86400 * 10**6 // executions
    for low in range(1, executions + 1, CHUNK_ROWS):
        high = min(low + CHUNK_ROWS - 1, executions)
        connection.execute(f"""
            INSERT INTO executions ({', '.join(EXEC_COLUMNS)})
            WITH RECURSIVE c(i) AS (SELECT {low} UNION ALL SELECT i + 1 FROM c WHERE i < {high}),
            r AS MATERIALIZED (
                SELECT i, 1 + abs(random()) % {len(tasks)} AS task_id, abs(random()) % 1000 AS s,
                       abs(random()) % 4 AS m, abs(random()) % {len(WORDS)} AS wk, 1 + abs(random()) % 2000 AS dur,
                       printf('%s.%06d', datetime({first_epoch} + (i * {step_us}) / 1000000, 'unixepoch'),
                              (i * {step_us}) % 1000000) AS at
                FROM c),
            g AS MATERIALIZED (SELECT r.*, {_status_sql('r.s')} AS status, words.w AS w FROM r JOIN words ON words.k = r.wk)
            SELECT g.i, t.id, t.name, g.status, CASE g.status WHEN 'RETRYING' THEN 2 ELSE 1 END, 'SCHEDULE', g.at,
                   g.at, g.at, g.dur, {MESSAGE_SQL}, g.at
            FROM g JOIN tasks t ON t.id = g.task_id""")
        connection.commit()
        log(f"  {high:,} executions")
    connection.execute(f"""
        INSERT INTO notifications ({', '.join(NOTE_COLUMNS)})
        SELECT row_number() OVER (ORDER BY id), task_id, id, 'ERROR', task_name || ' failed', message,
               abs(random()) % 100 >= 5, created_at, 1
        FROM executions WHERE status = 'FAILED'""")
    connection.commit()
    log("  creating the indexes")
    for sql in indexes:
        connection.execute(sql)
    connection.execute("ANALYZE")
    connection.commit()
    raw.close()


def _drop_indexes_sqlite(connection: sqlite3.Connection, tables: tuple[str, ...]) -> list[str]:
    rows = connection.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
        f"({', '.join('?' * len(tables))})", tables).fetchall()
    for name, _sql in rows:
        connection.execute(f'DROP INDEX "{name}"')
    return [sql for _name, sql in rows]


def _build_postgres(db: Any, tasks: list[dict[str, Any]], executions: int, rng: random.Random) -> None:
    """Tasks by COPY; executions generated by Postgres itself (generate_series, a million rows a statement)."""
    raw = db.engine.raw_connection()
    connection = raw.driver_connection  # psycopg 3
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef, indexname FROM pg_indexes WHERE schemaname = current_schema() "
                       "AND tablename IN ('executions', 'notifications') "
                       "AND indexname NOT IN (SELECT conname FROM pg_constraint)")
        indexes = cursor.fetchall()
        for _sql, name in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        with cursor.copy(f"COPY tasks ({', '.join(TASK_COLUMNS)}) FROM STDIN") as copy:
            for task in tasks:
                copy.write_row(_task_values(task, _pg_time))
        cursor.execute("SELECT setseed(0.14)")
        words = "ARRAY[" + ", ".join(f"'{w}'" for w in WORDS) + "]"
        first_epoch = int((ANCHOR - timedelta(days=DAYS)).timestamp())
        step_us = DAYS * 86400 * 10**6 // executions
        for low in range(1, executions + 1, CHUNK_ROWS):
            high = min(low + CHUNK_ROWS - 1, executions)
            cursor.execute(f"""
                INSERT INTO executions ({', '.join(EXEC_COLUMNS)})
                WITH r AS MATERIALIZED (
                    SELECT i, 1 + floor(random() * {len(tasks)})::int AS task_id, floor(random() * 1000)::int AS s,
                           floor(random() * 4)::int AS m, ({words})[1 + floor(random() * {len(WORDS)})::int] AS w,
                           1 + floor(random() * 2000)::int AS dur,
                           to_timestamp({first_epoch}) + make_interval(secs => (i::bigint * {step_us}) / 1e6) AS at
                    FROM generate_series({low}, {high}) AS i),
                g AS MATERIALIZED (SELECT r.*, {_status_sql('r.s')} AS status FROM r)
                SELECT g.i, t.id, t.name, g.status, CASE g.status WHEN 'RETRYING' THEN 2 ELSE 1 END, 'SCHEDULE', g.at,
                       g.at, g.at, g.dur, {MESSAGE_SQL}, g.at
                FROM g JOIN tasks t ON t.id = g.task_id""")
            connection.commit()
            log(f"  {high:,} executions")
        cursor.execute(f"""
            INSERT INTO notifications ({', '.join(NOTE_COLUMNS)})
            SELECT row_number() OVER (ORDER BY id), task_id, id, 'ERROR', task_name || ' failed', message,
                   random() >= 0.05, created_at, 1
            FROM executions WHERE status = 'FAILED'""")
        log("  creating the indexes")
        for sql, _name in indexes:
            cursor.execute(sql)
        for table in ("tasks", "executions", "notifications"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        connection.commit()
        connection.autocommit = True
        cursor.execute("VACUUM ANALYZE")
    raw.close()


# --------------------------------------------------------------------------------------- measure
def endpoints(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, path) of every request timed; `data` holds ids and dates picked from the data set."""
    since = data["since_1d"]
    return [
        ("api tasks: default page", "/api/tasks/"),
        ("api tasks: status=FAILED", "/api/tasks/?status=FAILED"),
        ("api tasks: type=ONE_TIME", "/api/tasks/?schedule_type=ONE_TIME"),
        ("api tasks: enabled=false", "/api/tasks/?enabled=false"),
        ("api tasks: search (common word)", "/api/tasks/?search=billing"),
        ("api tasks: search (one task)", f"/api/tasks/?search={data['task_name']}"),
        ("api tasks: search (no match)", "/api/tasks/?search=zzqx"),
        ("api tasks: page at offset 50,000", "/api/tasks/?offset=50000"),
        ("api logs: default page", "/api/logs/"),
        ("api logs: task_id=", f"/api/logs/?task_id={data['task_id']}"),
        ("api task logs: /tasks/<id>/logs/", f"/api/tasks/{data['task_id']}/logs/"),
        ("api logs: status=FAILED", "/api/logs/?status=FAILED"),
        ("api logs: status=SUCCESS", "/api/logs/?status=SUCCESS"),
        ("api logs: last 24 h", f"/api/logs/?since={since}"),
        ("api logs: one day a week ago", f"/api/logs/?since={data['since_7d']}&until={data['until_7d']}"),
        ("api logs: search (common word)", "/api/logs/?search=billing"),
        ("api logs: search (rare text)", "/api/logs/?search=refused"),
        ("api logs: search (no match)", "/api/logs/?search=zzqx"),
        ("api logs: 3rd page via next", "NEXT:/api/logs/?limit=50"),
        ("api logs: page at offset 10,000", "/api/logs/?offset=10000"),
        ("api notifications: default page", "/api/notifications/"),
        ("api notifications: unread", "/api/notifications/?unread=true"),
        ("api stats", "/api/stats/"),
        ("admin dashboard", "/"),
        ("admin tasks list", "/tasks"),
        ("admin tasks list: search", "/tasks?q=billing"),
        ("admin tasks list: page 100", "/tasks?page=100"),
        ("admin logs list", "/logs"),
        ("admin logs list: FAILED, 24 h", "/logs?status=FAILED&range=24h"),
        ("admin logs list: search", "/logs?q=refused"),
        ("admin notifications", "/notifications"),
    ]


def align_indexes(db: Any) -> dict[str, list[str]]:
    """Make the indexes of the measured tables exactly those of this tree's models."""
    from sqlalchemy import inspect

    TRIGRAM_INDEXES, create_trigram_indexes = {}, None  # the migration-made indexes of the tree measured
    for migration in (ROOT / "migrations" / "versions").glob("b7e2d4f6a9c1_*.py"):  # none before that migration
        spec = importlib.util.spec_from_file_location("trigram_migration", migration)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        TRIGRAM_INDEXES, create_trigram_indexes = module.TRIGRAM_INDEXES, module.create_trigram_indexes
    created, dropped = [], []
    with db.engine.begin() as connection:
        inspector = inspect(connection)
        for table_name in TABLES_MEASURED:
            table = db.metadata.tables[table_name]
            wanted = {index.name: index for index in table.indexes}
            if connection.dialect.name == "postgresql":
                wanted.update({name: None for name, (indexed, _) in TRIGRAM_INDEXES.items() if indexed == table_name})
            present = {ix["name"] for ix in inspector.get_indexes(table_name)}
            if connection.dialect.name == "sqlite":  # the inspector leaves out indexes on expressions
                present |= set(connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table_name,)).scalars())
            unique_names = {uc["name"] for uc in inspector.get_unique_constraints(table_name)}
            for name in sorted(present - set(wanted) - unique_names):
                if name and not name.startswith("sqlite_autoindex"):
                    connection.exec_driver_sql(f'DROP INDEX "{name}"')
                    dropped.append(name)
            for name, index in wanted.items():
                if name not in present and index is None:
                    log(f"  creating index {name} (a migration's)")
                    create_trigram_indexes(connection)
                    created.append(name)
                elif name not in present:
                    log(f"  creating index {name}")
                    index.create(connection)
                    created.append(name)
        if created or dropped:
            for table_name in TABLES_MEASURED:  # these tables only: other runs' schemas share the database
                connection.exec_driver_sql(f"ANALYZE {table_name}")
    return {"created": created, "dropped": dropped}


def measure(args: argparse.Namespace) -> None:
    from tests.services import RedisServer

    tmp = Path(tempfile.mkdtemp(prefix="chime-api-scale-"))
    redis_server = RedisServer(tmp)
    redis_server.start()
    try:
        result = _measure(args, redis_server.url)
    finally:
        redis_server.stop()
        shutil.rmtree(tmp, True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")


def _measure(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    from webapp import create_app
    from webapp.auth import create_user
    from chime.extensions import db

    token = "bench-api-scale-token"
    app = create_app({"SQLALCHEMY_DATABASE_URI": args.url, "SECRET_KEY": "bench", "REDIS_URL": redis_url,
                      "API_TOKENS": [token], "TESTING": False})
    out: dict[str, Any] = {"label": args.label, "tree": str(ROOT)}
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(db.text("SET statement_timeout = '120s'"))
        out["indexes"] = align_indexes(db)
        from sqlalchemy import func, select

        from chime.models import Execution, Task, User

        user = db.session.scalar(select(User).where(User.username == "bench-admin"))
        if user is None:
            user = create_user("bench-admin", "bench-password-123")
        max_id = db.session.scalar(select(func.max(Execution.id)))
        newest = db.session.scalar(select(Execution.created_at).where(Execution.id == max_id))
        task = db.session.get(Task, min(4242, db.session.scalar(select(func.max(Task.id)))))
        data = {
            "task_id": task.id, "task_name": task.name,
            "since_1d": (newest - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "since_7d": (newest - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "until_7d": (newest - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        out["rows"] = {"executions_max_id": max_id, "newest": newest}
        user_id, generation = user.id, user.session_generation
        db.session.remove()
    if "freeze_start_up_objects()" in (ROOT / "wsgi.py").read_text():  # as the tree's web process does (wsgi.py)
        from chime.app import freeze_start_up_objects

        freeze_start_up_objects()
    client = app.test_client()
    with client.session_transaction() as session:
        session.update({"user_id": user_id, "username": "bench-admin", "generation": generation,
                        "logged_in_at": datetime.now(timezone.utc).isoformat()})
        session.permanent = True
    headers = {"Authorization": f"Bearer {token}"}
    wanted = set(args.only or [])
    timings: dict[str, Any] = {}
    for name, path in endpoints(data):
        if wanted and not any(w in name for w in wanted):
            continue
        timings[name] = _time_endpoint(client, headers, path, args.requests, args.budget_seconds)
        t = timings[name]
        log(f"  {args.label:6} {name:40} p50 {t['p50_ms']:8.1f} ms  p99 {t['p99_ms']:8.1f} ms  "
            f"status {t['status']} {t.get('note', '')}")
    out["endpoints"] = timings
    if args.prune_rows:
        with app.app_context():
            out["retention"] = _prune(db, args.prune_rows)
    return out


def _time_endpoint(client: Any, headers: dict[str, str], path: str, requests: int,
                   budget_seconds: float) -> dict[str, Any]:
    """`requests` timed requests after a warm-up one; fewer when they take longer than `budget_seconds`
    in all (a baseline request that reads ten million rows takes many seconds: then n is small)."""
    follow = path.startswith("NEXT:")
    began = time.perf_counter()
    if follow:
        path = path[len("NEXT:"):]
    samples = []
    status = None
    note = ""
    for i in range(requests + 1):  # a warm-up request
        target = path
        if follow:  # the first two pages are followed untimed; the third is timed
            for _ in range(2):
                body = client.get(target, headers=headers).get_json()
                target = body["next"]
        started = time.perf_counter()
        response = client.get(target, headers=headers)
        body = response.get_data()
        elapsed = time.perf_counter() - started
        status = response.status_code
        if i >= 1 or elapsed > budget_seconds:  # a warm-up slower than the whole budget is the one sample
            samples.append(elapsed)
            if time.perf_counter() - began > budget_seconds:
                break
        if i == 0 and response.is_json:
            doc = response.get_json()
            if isinstance(doc, dict) and "count" in doc:
                note = f"count={doc['count']} results={len(doc.get('results', []))}"
        del body
    samples.sort()
    return {"n": len(samples), "p50_ms": round(1000 * statistics.median(samples), 2),
            "p99_ms": round(1000 * samples[max(0, -(-99 * len(samples) // 100) - 1)], 2),
            "max_ms": round(1000 * samples[-1], 2), "status": status, "note": note}


def _prune(db: Any, rows: int) -> dict[str, Any]:
    """Prune the oldest ~`rows` executions with scheduler.retention, timing each batch."""
    from sqlalchemy import event, func, select

    from chime.models import Execution
    from scheduler import retention

    first_id = db.session.scalar(select(func.min(Execution.id)))
    cutoff = db.session.scalar(select(Execution.created_at).where(Execution.id >= first_id + rows - 1)
                               .order_by(Execution.id).limit(1))
    db.session.remove()
    commits: list[float] = []
    state = {"last": time.perf_counter()}

    def on_commit(_conn: Any) -> None:
        now = time.perf_counter()
        commits.append(now - state["last"])
        state["last"] = now

    event.listen(db.engine, "commit", on_commit)
    try:
        started = time.perf_counter()
        state["last"] = started
        report = retention.prune(cutoff + timedelta(days=1), retention_days=1)
        elapsed = time.perf_counter() - started
    finally:
        event.remove(db.engine, "commit", on_commit)
        db.session.remove()
    commits.sort()
    log(f"  prune: {report} in {elapsed:.1f} s, {len(commits)} commits, longest batch "
        f"{1000 * commits[-1] if commits else 0:.0f} ms")
    return {"report": report, "seconds": round(elapsed, 2), "batches": len(commits),
            "batch_p50_ms": round(1000 * statistics.median(commits), 1) if commits else None,
            "batch_max_ms": round(1000 * commits[-1], 1) if commits else None}


# ------------------------------------------------------------------------------------------- run
def database_url(args: argparse.Namespace) -> str:
    if args.db == "sqlite":
        return f"sqlite:///{Path(args.keep).resolve()}"
    base = args.postgres_url
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}?options=-csearch_path%3D{args.pg_schema}"


def database_exists(args: argparse.Namespace) -> bool:
    if args.db == "sqlite":
        return Path(args.keep).exists()
    import psycopg

    with psycopg.connect(args.postgres_url) as conn:
        return conn.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND "
                            "table_name = 'executions'", (args.pg_schema,)).fetchone() is not None


def run(args: argparse.Namespace) -> None:
    python = sys.executable
    url = database_url(args)
    if not database_exists(args):
        if args.db == "postgres":
            import psycopg

            with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{args.pg_schema}"')
        build(args.db, url, args.tasks, args.executions, args.seed)
    base_tree = Path(tempfile.mkdtemp(prefix="chime-api-scale-base-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.base], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        shutil.copy(__file__, base_tree / "bench" / "api_scale.py")  # the base may predate this script
        rounds: list[dict[str, Any]] = []
        order = [("before", base_tree), ("after", ROOT)]
        for round_index in range(args.rounds):
            for label, tree in (order if round_index % 2 == 0 else order[::-1]):
                out = Path(tempfile.mktemp(suffix=".json"))
                command = [python, str(tree / "bench" / "api_scale.py"), "measure", "--url", url, "--label", label,
                           "--requests", str(args.requests), "--budget-seconds", str(args.budget_seconds),
                           "--out", str(out)]
                if args.only:
                    command += ["--only", *args.only]
                log(f"round {round_index + 1}: {label} ({tree}) load {os.getloadavg()[0]:.2f}")
                subprocess.run(command, cwd=tree, check=True)
                rounds.append({"round": round_index + 1, "loadavg": os.getloadavg(), **json.loads(out.read_text())})
                out.unlink()
        if args.prune_rows:
            for label, tree in order:  # each prunes the next-oldest slice of --prune-rows rows
                out = Path(tempfile.mktemp(suffix=".json"))
                rows = args.prune_rows_before if label == "before" and args.prune_rows_before else args.prune_rows
                subprocess.run([python, str(tree / "bench" / "api_scale.py"), "measure", "--url", url, "--label",
                                label, "--requests", "0", "--only", "none", "--prune-rows", str(rows),
                                "--out", str(out)], cwd=tree, check=True)
                rounds.append({"round": "prune", **json.loads(out.read_text())})
                out.unlink()
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, capture_output=True)
    report(args, rounds)


def report(args: argparse.Namespace, rounds: list[dict[str, Any]]) -> None:
    from bench.common import write_results

    table: dict[str, dict[str, list[float]]] = {}
    for entry in rounds:
        for name, t in entry.get("endpoints", {}).items():
            cell = table.setdefault(name, {})
            cell.setdefault(f"{entry['label']}_p50", []).append(t["p50_ms"])
            cell.setdefault(f"{entry['label']}_p99", []).append(t["p99_ms"])
    summary = {}
    print(f"| endpoint ({args.db}) | before p50 | before p99 | after p50 | after p99 |")
    print("|---|---:|---:|---:|---:|")
    for name, cell in table.items():
        med = {k: statistics.median(v) for k, v in cell.items()}
        summary[name] = med
        print(f"| {name} | {med.get('before_p50', 0):.1f} | {med.get('before_p99', 0):.1f} | "
              f"{med.get('after_p50', 0):.1f} | {med.get('after_p99', 0):.1f} |")
    write_results(f"api_scale_{args.db}", {
        "command": " ".join(sys.argv), "tasks": args.tasks, "executions": args.executions,
        "requests_per_endpoint": args.requests, "rounds": rounds,
        "medians_over_rounds_ms": summary})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "run"):
        p = sub.add_parser(name)
        p.add_argument("--db", choices=("sqlite", "postgres"), required=True)
        p.add_argument("--keep", default="/tmp/chime-api-scale.sqlite3", help="the SQLite data file (reused)")
        p.add_argument("--postgres-url", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_POSTGRES_URL))
        p.add_argument("--pg-schema", default="chime_api_scale", help="the Postgres schema (kept, reused)")
        p.add_argument("--tasks", type=int, default=100_000)
        p.add_argument("--executions", type=int, default=10_000_000)
        p.add_argument("--seed", type=int, default=14)
        if name == "run":
            p.add_argument("--base", default="HEAD", help="the commit measured as 'before'")
            p.add_argument("--rounds", type=int, default=2)
            p.add_argument("--requests", type=int, default=50)
            p.add_argument("--prune-rows", type=int, default=1_000_000)
            p.add_argument("--prune-rows-before", type=int, default=None,
                           help="rows the base prunes (default --prune-rows; smaller when the base is slow)")
            p.add_argument("--budget-seconds", type=float, default=60,
                           help="time per endpoint: fewer requests (at least 1) when they take longer")
            p.add_argument("--only", nargs="*", help="only endpoints whose name contains one of these")
    m = sub.add_parser("measure")
    m.add_argument("--url", required=True)
    m.add_argument("--label", required=True)
    m.add_argument("--requests", type=int, default=50)
    m.add_argument("--out", required=True)
    m.add_argument("--only", nargs="*")
    m.add_argument("--prune-rows", type=int, default=0)
    m.add_argument("--budget-seconds", type=float, default=60)
    args = parser.parse_args()
    if args.command == "build":
        if args.db == "postgres":
            import psycopg

            with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{args.pg_schema}"')
        build(args.db, database_url(args), args.tasks, args.executions, args.seed)
    elif args.command == "measure":
        measure(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
