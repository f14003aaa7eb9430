"""The Procfile's web process (gunicorn, gthread) with 50 open live streams (GET /events): ordinary requests
still answer, a change reaches every stream, and stopping the web process ends the streams instead of
waiting for browsers to hang up. Real web, worker and scheduler processes; real Redis."""
from __future__ import annotations

import http.client
import re
import signal
import socket
from typing import Any

import requests

from tests.engine_fixtures import Engine, wait_for
from webapp.auth import create_user

TOKEN = "live-streams-token"
USERNAME, PASSWORD = "watcher", "watcher password 123"
STREAMS = 50
ANSWER_TIMEOUT_SECONDS = 30  # generous: the point is that requests answer at all, not how fast


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_cookie(base: str) -> str:
    browser = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get(f"{base}/login").text).group(1)
    answer = browser.post(f"{base}/login", data={"username": USERNAME, "password": PASSWORD, "csrf_token": token},
                          allow_redirects=False)
    assert answer.status_code == 302
    return "session=" + browser.cookies["session"]


def open_stream(port: int, cookie: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_TIMEOUT_SECONDS)
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


def web_answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/api/health/", timeout=2).status_code == 200
    except requests.RequestException:
        return False


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
    cookie = session_cookie(base)
    streams = [open_stream(port, cookie) for _ in range(STREAMS)]
    try:
        api = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(10):
            assert requests.get(f"{base}/api/health/", timeout=ANSWER_TIMEOUT_SECONDS).status_code == 200
            assert requests.get(f"{base}/api/tasks/", headers=api, timeout=ANSWER_TIMEOUT_SECONDS).status_code == 200
        created = requests.post(f"{base}/api/tasks/", headers=api, timeout=ANSWER_TIMEOUT_SECONDS, json={
            "name": "heard everywhere", "job": "echo", "args": {"message": "hi"},
            "schedule_type": "INTERVAL", "interval_seconds": 3600})
        assert created.status_code == 201, created.text
        assert [next_event_name(stream) for stream in streams] == ["change"] * STREAMS

        process = engine.processes.pop(web)
        process.send_signal(signal.SIGTERM)  # the gunicorn master: its workers end their streams first
        for stream in streams:
            stream.read()  # returns once the server ended the stream (a hanging one would time out)
            assert stream.isclosed()
        process.wait(timeout=ANSWER_TIMEOUT_SECONDS)
    finally:
        for stream in streams:
            stream.close()
