"""A webhook receiver that refuses for 60 s, then accepts: every alert arrives exactly once by delivery id,
none is lost and none fails (issue 13).

Real processes from the Procfile: `worker`, `scheduler`, `alerts`. Several one-time tasks fail (one retry
each), so the default rule sends a `retrying` and a `failed` alert per task. The receiver is a real HTTP
server in this test that checks every signature the way the README tells a receiver to (HMAC-SHA256 of
"<X-Chime-Timestamp>.<body>" with the channel's secret; Chime's signing code is not used here). It refuses
both ways a receiver can: for its first 30 s nothing listens on its port (connection refused), for the next
30 s it answers 503; from 60 s on it answers 204. The first retry waits 5 s (CHIME_ALERT_RETRY_FIRST_SECONDS,
doubling), so the refusal spans several attempts of every alert and the test ends within about two minutes.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.engine.helpers import create, deliveries, in_seconds
from tests.faults.alerting import default_rule_to_webhook
from tests.engine_fixtures import Engine, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600),
              pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)]

SECRET = "whsec-outage-test-secret-9f3a"
CONNECTION_REFUSED_SECONDS = 30  # nothing listens on the port
UNAVAILABLE_SECONDS = 30  # then it answers 503
REFUSAL_SECONDS = CONNECTION_REFUSED_SECONDS + UNAVAILABLE_SECONDS  # the issue: refuses for 60 s
MAX_AGE_SECONDS = 300  # the README's receiver rejects a timestamp older than 5 minutes
TASKS = 4
EVENTS_PER_TASK = ("retrying", "failed")  # max_retries=1: the first attempt retries, the second fails


def verify(headers: Any, body: bytes, now: float) -> bool:
    """The README's check: a fresh X-Chime-Timestamp and X-Chime-Signature = sha256=HMAC(secret, ts "." body)."""
    timestamp = headers.get("X-Chime-Timestamp", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    expected = "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("X-Chime-Signature", ""))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receiver:
    """A webhook receiver on a fixed loopback port: not listening until `listen()`, then 503 until
    `accept_from` (monotonic), then 204. Keeps every request it read and counts the accepted ones."""

    def __init__(self, accept_from: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/chime"
        self.accept_from = accept_from
        self.requests: list[dict[str, Any]] = []
        self.accepted: Counter[str] = Counter()
        self.server: ThreadingHTTPServer | None = None
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                accepting = time.monotonic() >= receiver.accept_from
                with receiver.lock:
                    receiver.requests.append({"delivery": self.headers.get("X-Chime-Delivery", ""),
                                              "event": self.headers.get("X-Chime-Event"), "accepted": accepting,
                                              "valid": verify(self.headers, body, time.time()),
                                              "body": json.loads(body)})
                    if accepting:
                        receiver.accepted[self.headers.get("X-Chime-Delivery", "")] += 1
                self.send_response(204 if accepting else 503)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def listen(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    refusal_starts = time.monotonic()
    server = Receiver(accept_from=refusal_starts + REFUSAL_SECONDS)
    opener = threading.Timer(CONNECTION_REFUSED_SECONDS, server.listen)
    opener.start()
    yield server
    opener.cancel()
    server.close()


def refusal_kind(status: int | None, error: str | None) -> str:
    if status == 503:
        return "503"
    return "connection refused" if status is None and "refused" in (error or "").lower() else f"other: {error}"


def test_a_receiver_refusing_for_a_minute_gets_every_alert_exactly_once_afterwards(
        engine: Engine, engine_app: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    default_rule_to_webhook(engine, engine_app, monkeypatch, receiver.url, SECRET, EVENTS_PER_TASK,
                            group_window_seconds=0)
    engine.env.update(CHIME_ALERT_RETRY_FIRST_SECONDS="5", CHIME_ALERT_SWEEP_INTERVAL_SECONDS="1")
    engine.start("worker")
    engine.start("alerts")
    engine.start("scheduler")
    engine.wait_ready(engine_app.extensions["redis"], workers=2, schedulers=1)
    task_ids = [create(name=f"failing {n}", job="fail", args={"message": f"boom {n}"}, schedule_type="ONE_TIME",
                       interval_seconds=None,
                       run_at=in_seconds(2), max_retries=1, retry_backoff_seconds=1) for n in range(TASKS)]
    expected = {(task_id, event) for task_id in task_ids for event in EVENTS_PER_TASK}

    def every_alert_delivered() -> bool:
        rows = deliveries()
        return len(rows) == len(expected) and all(row.status == "delivered" for row in rows)

    wait_for(every_alert_delivered, REFUSAL_SECONDS + 240, "every alert to be delivered", engine)

    rows = deliveries()
    assert {(row.task_id, row.event) for row in rows} == expected, "every alert the rule sends, once each"
    assert sorted(receiver.accepted) == sorted(row.delivery_id for row in rows), "every alert arrived"
    assert set(receiver.accepted.values()) == {1}, "none arrived twice"
    accepted = [r for r in receiver.requests if r["accepted"]]
    assert {(r["body"]["task_id"], r["event"]) for r in accepted} == expected
    assert all(r["valid"] for r in receiver.requests), "every request, refused or not, is signed as documented"
    assert all(r["body"]["delivery_id"] == r["delivery"] for r in receiver.requests)

    refused_kinds: set[str] = set()
    for row in rows:
        *failures, success = row.attempt_log
        assert failures, f"delivery {row.delivery_id} was attempted while the receiver refused"
        assert not any(a.ok for a in failures) and all(a.error for a in failures)
        assert (success.ok, success.response_status) == (True, 204)
        assert row.attempts == len(row.attempt_log)
        refused_kinds |= {refusal_kind(a.response_status, a.error) for a in failures}
    assert refused_kinds == {"connection refused", "503"}, "attempts met both kinds of refusal, and only those"
    assert not [row for row in rows if row.status == "failed"], "none failed"
