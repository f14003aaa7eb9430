"""The scheduler is killed (SIGKILL) with tasks due: `missed` and `scheduler_down` still reach a real webhook
receiver within two minutes, because the alerts worker -- not the scheduler -- notices (scheduler/watchdog.py);
when it is started again, `scheduler_up` ends the episode.

Real processes from the Procfile: `worker`, `scheduler`, `alerts`; a real HTTP receiver in this test that
checks every signature the way the README tells a receiver to.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.engine.helpers import create
from tests.engine_fixtures import Engine, wait_for
from tests.faults.alerting import default_rule_to_webhook

pytestmark = pytest.mark.engine

SECRET = "whsec-watchdog-test-secret"
ARRIVAL_DEADLINE_SECONDS = 120  # the issue: within two minutes of the scheduler's death


class Receiver:
    """A webhook receiver on 127.0.0.1 keeping every POST: its event header, body and signature check."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers.get("X-Chime-Timestamp", "")
                expected = "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body,
                                                hashlib.sha256).hexdigest()
                received.append({"event": self.headers.get("X-Chime-Event"), "body": json.loads(body),
                                 "valid": hmac.compare_digest(expected, self.headers.get("X-Chime-Signature", ""))})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/chime"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def events(self) -> list[str]:
        return [r["event"] for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_missed_and_scheduler_down_arrive_while_the_scheduler_is_dead(
        engine: Engine, engine_app: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    default_rule_to_webhook(engine, engine_app, monkeypatch, receiver.url, SECRET,
                            ["missed", "scheduler_down", "scheduler_up"])
    engine.env.update(CHIME_WATCHDOG_INTERVAL_SECONDS="1", CHIME_ALERT_SWEEP_INTERVAL_SECONDS="1")
    connection = engine_app.extensions["redis"]
    engine.start("worker")
    engine.start("alerts")
    engine.start("scheduler", name="scheduler")
    engine.wait_ready(connection, workers=2, schedulers=1)
    task_id = create(name="every ten seconds", interval_seconds=10, misfire_grace_seconds=3)

    engine.kill("scheduler")  # SIGKILL: no goodbye, its heartbeat just stops

    wait_for(lambda: {"missed", "scheduler_down"} <= set(receiver.events()), ARRIVAL_DEADLINE_SECONDS,
             "missed and scheduler_down at the webhook receiver", engine)
    assert all(r["valid"] for r in receiver.received)
    missed = [r["body"] for r in receiver.received if r["event"] == "missed"]
    assert missed[0]["task_id"] == task_id and missed[0]["details"]["grace_seconds"] == 3
    down = [r["body"] for r in receiver.received if r["event"] == "scheduler_down"]
    assert down[0]["title"] == "The scheduler is down"

    time.sleep(5)  # the watchdog keeps looking every second: still one alert of each
    assert receiver.events().count("scheduler_down") == 1
    assert receiver.events().count("missed") == 1

    engine.start("scheduler", name="scheduler")  # back: the episode ends with scheduler_up
    wait_for(lambda: "scheduler_up" in receiver.events(), ARRIVAL_DEADLINE_SECONDS, "scheduler_up", engine)
    assert receiver.events().count("scheduler_down") == 1
