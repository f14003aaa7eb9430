"""The execution log's export (GET /api/logs/export/) over many rows: rows per second and peak memory.

Fills a fresh SQLite file with N execution-log rows (core inserts, 20,000 a statement), then downloads
the whole log through the app (Flask's test client, the body read chunk by chunk as a client would) in
each format, and reports per format: rows, bytes, seconds, rows per second, and the process's peak
resident memory during the export (VmHWM after resetting it through /proc/self/clear_refs, Linux) next to
the resident memory before it. A streamed export keeps the peak near the starting figure whatever N is;
one that loaded every row would grow with N. With --tracemalloc it also reports the peak of Python's
own allocations during the export (slower: the rows/s of that run are not comparable).

Usage (from the repo root):  .venv/bin/python bench/export.py --rows 1000000 [--formats csv json] [--tracemalloc]
Nothing here asserts a timing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from chime.extensions import db  # noqa: E402
from chime.models import Execution, Task  # noqa: E402
from webapp import create_app  # noqa: E402

TOKEN = "bench-export-token"
INSERT_CHUNK = 20_000
STATUSES = ("SUCCESS", "SUCCESS", "SUCCESS", "FAILED", "RETRYING", "SKIPPED")


def memory_kib(field: str) -> int:
    """A figure of /proc/self/status in KiB (VmRSS: now, VmHWM: the peak since the last reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from VmRSS


def fill(rows: int) -> None:
    task = Task(name="bench-export", job="echo", args={"message": "hi"}, schedule_type="INTERVAL",
                interval_seconds=60, timezone="UTC")
    db.session.add(task)
    db.session.commit()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for first in range(0, rows, INSERT_CHUNK):
        db.session.execute(insert(Execution), [
            {"task_id": task.id, "task_name": task.name, "status": STATUSES[i % len(STATUSES)], "attempt": 1,
             "trigger": "SCHEDULE", "scheduled_for": start + timedelta(seconds=i), "started_at": start,
             "finished_at": start, "duration_ms": i % 5000, "message": f"run {i}: echoed 'hi' to the log",
             "result": {"echo": "hi"}, "worker": "bench-worker", "job_id": f"chime-1-{i}-1",
             "created_at": start + timedelta(seconds=i)}
            for i in range(first, min(first + INSERT_CHUNK, rows))])
        db.session.commit()


def export(client: Any, file_format: str, trace: bool) -> dict[str, Any]:
    rss_before = memory_kib("VmRSS")
    reset_peak_rss()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    response = client.get(f"/api/logs/export/?format={file_format}",
                          headers={"Authorization": f"Bearer {TOKEN}"}, buffered=False)
    size = lines = 0
    for chunk in response.response:
        size += len(chunk)
        lines += chunk.count(b"\n")
    response.close()
    seconds = time.perf_counter() - started
    python_peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    rows = lines - 1 if file_format == "csv" else lines - 2  # csv: the header line; json: "[" … "\n]\n"
    return {"format": file_format, "rows": rows, "bytes": size, "seconds": round(seconds, 2),
            "rows_per_second": round(rows / seconds), "rss_before_mib": round(rss_before / 1024, 1),
            "peak_rss_mib": round(memory_kib("VmHWM") / 1024, 1),
            "python_peak_mib": round(python_peak / 2**20, 1) if python_peak is not None else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", nargs="+", default=["csv", "json"], choices=["csv", "json"])
    parser.add_argument("--tracemalloc", action="store_true", help="also the peak of Python's allocations")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "API_TOKENS": [TOKEN],
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory}/bench.sqlite3",
                          "REDIS_URL": "redis://127.0.0.1:1/0"})  # the export never touches Redis
        with app.app_context():
            db.create_all()
            started = time.perf_counter()
            fill(args.rows)
            print(f"filled {args.rows:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            db.session.remove()
            client = app.test_client()
            results = [export(client, file_format, args.tracemalloc) for file_format in args.formats]
            db.engine.dispose()
    print(json.dumps({"rows": args.rows, "load_average": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
