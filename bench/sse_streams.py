"""Request latency of the web process with 0 and with N open live streams (GET /events, Server-Sent Events).

The Procfile's `web:` line (gunicorn, gthread workers) against a private redis-server and a scratch
SQLite database: first GET /api/health/ and GET /api/tasks/ alone, then the same requests while N
signed-in browsers hold /events open (a worker and the scheduler run, so health is 200) and a change event is published every 100 ms (so every stream
is busy writing). Prints p50/p90/p99 per phase and writes bench/results/sse_streams.json.

    .venv/bin/python bench/sse_streams.py --streams 50 --requests 1000   (from the repo root)
"""
from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Env, log, print_table, procfile_command, summary_ms, wait_for, write_results  # noqa: E402
from chime.live import channel_of  # noqa: E402
from tests.services import free_port  # noqa: E402
from tests.web_process import call, session_cookie, web_answers  # noqa: E402

TOKEN = "bench-sse-token"
USERNAME, PASSWORD = "bench", "bench password 123"


def open_stream(port: int, cookie: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/events", headers={"Cookie": cookie, "Accept": "text/event-stream"})
    response = connection.getresponse()
    assert response.status == 200, response.status
    assert response.readline().startswith(b"retry:")  # gunicorn sends it chunked: read through http.client
    return response


def drain(streams: list[http.client.HTTPResponse], stop: threading.Event) -> None:
    """Read what the streams send, as browsers do (a stream nobody reads would fill its socket)."""
    import selectors

    selector = selectors.DefaultSelector()
    for stream in streams:
        selector.register(stream.fp, selectors.EVENT_READ, stream)
    while not stop.is_set():
        for key, _ in selector.select(timeout=0.2):
            key.data.read1(65536)


def timed_requests(base: str, count: int) -> list[float]:
    durations = []
    for index in range(count):
        path = "/api/health/" if index % 2 else "/api/tasks/"
        started = time.perf_counter()
        status, _body = call(base, "GET", path, token=TOKEN)
        durations.append(time.perf_counter() - started)
        assert status == 200, (path, status)
    return durations


def publish_every(env: Env, seconds: float, stop: threading.Event) -> None:
    while not stop.wait(seconds):
        env.redis.publish(channel_of(env.redis), '{"kinds":["run"],"task_ids":[1]}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with Env() as env:
        from chime.models import Task
        from webapp.auth import create_user

        create_user(USERNAME, PASSWORD)
        for index in range(20):
            env.db.session.add(Task(name=f"bench {index}", job="noop", args={}, schedule_type="INTERVAL",
                                    interval_seconds=3600, timezone="UTC"))
        env.db.session.commit()
        env.start_worker("worker")
        env.start_scheduler()
        env.wait_engine_ready(workers=1, schedulers=1)  # so /api/health/ answers 200, not 503
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env.procs.start("web", procfile_command("web"), {"PORT": str(port), "WEB_CONCURRENCY": "2",
                                                          "API_TOKENS": TOKEN})
        wait_for(lambda: web_answers(base), 30, "the web process")
        cookie = session_cookie(base, USERNAME, PASSWORD)
        timed_requests(base, 20)  # warm both workers up
        phases: dict[str, Any] = {}
        log("0 open streams")
        phases["0 streams"] = summary_ms(timed_requests(base, args.requests))
        streams = [open_stream(port, cookie) for _ in range(args.streams)]
        stop = threading.Event()
        threads = [threading.Thread(target=drain, args=(streams, stop), daemon=True),
                   threading.Thread(target=publish_every, args=(env, 0.1, stop), daemon=True)]
        for thread in threads:
            thread.start()
        log(f"{args.streams} open streams, a change published every 100 ms")
        phases[f"{args.streams} streams"] = summary_ms(timed_requests(base, args.requests))
        stop.set()
        for stream in streams:
            stream.close()
        rows = [(name, s["n"], s["p50"], s["p90"], s["p99"], s["max"]) for name, s in phases.items()]
        print_table(("phase", "requests", "p50 ms", "p90 ms", "p99 ms", "max ms"), rows)
        write_results("sse_streams", {"streams": args.streams, "requests": args.requests,
                                      "worker": procfile_command("web"), "phases": phases})


if __name__ == "__main__":
    main()
