"""The Procfile's web process (gunicorn, gthread) with 50 open live streams (GET /events): ordinary requests
still answer, a change reaches every stream, and stopping the web process ends the streams instead of
waiting for browsers to hang up. Real web, worker and scheduler processes; real Redis."""
from __future__ import annotations

import http.client
import signal
from typing import Any

from tests.engine_fixtures import Engine, wait_for
from tests.services import free_port
from tests.web_process import TIMEOUT_SECONDS, call, session_cookie, web_answers
from webapp.auth import create_user

TOKEN = "live-streams-token"
USERNAME, PASSWORD = "watcher", "watcher password 123"
STREAMS = 50


def open_stream(port: int, cookie: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    connection.request("GET", "/events", headers={"Cookie": cookie, "Accept": "text/event-stream"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    assert response.readline().startswith(b"retry: ")
    return response


def next_event_name(stream: http.client.HTTPResponse) -> str:
    """The name of the next event on the stream (comments and the blank separators skipped)."""
    while True:
        line = stream.readline()
        assert line, "the stream ended"
        if line.startswith(b"event: "):
            return line[len(b"event: "):].strip().decode()


def test_fifty_open_streams_leave_ordinary_requests_answering_and_all_hear_a_change(
        engine: Engine, engine_app: Any) -> None:
    with engine_app.app_context():
        create_user(USERNAME, PASSWORD)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    engine.env.update(API_TOKENS=TOKEN, PORT=str(port), WEB_CONCURRENCY="2")
    web = engine.start("web")
    engine.start_engine(engine_app.extensions["redis"])
    wait_for(lambda: web_answers(base), 30, "the web process to answer", engine)
    cookie = session_cookie(base, USERNAME, PASSWORD)
    streams = [open_stream(port, cookie) for _ in range(STREAMS)]
    try:
        for _ in range(10):
            assert call(base, "GET", "/api/health/")[0] == 200
            assert call(base, "GET", "/api/tasks/", token=TOKEN)[0] == 200
        status, created = call(base, "POST", "/api/tasks/", token=TOKEN, body={
            "name": "heard everywhere", "job": "echo", "args": {"message": "hi"},
            "schedule_type": "INTERVAL", "interval_seconds": 3600})
        assert status == 201, created
        assert [next_event_name(stream) for stream in streams] == ["change"] * STREAMS

        process = engine.processes.pop(web)
        process.send_signal(signal.SIGTERM)  # the gunicorn master: its workers end their streams first
        for stream in streams:
            stream.read()  # returns once the server ended the stream (a hanging one would time out)
            assert stream.isclosed()
        process.wait(timeout=TIMEOUT_SECONDS)
    finally:
        for stream in streams:
            stream.close()
