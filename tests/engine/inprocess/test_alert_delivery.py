"""Alert delivery end to end, in this process: a real SMTP server (aiosmtpd) and a real HTTP receiver
that verifies each signature with its own code, the alerts worker (burst) on a real Redis."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

import chime.senders
from chime import alerts, channels
from chime.extensions import db
from chime.models import Execution, Notification, Task
from chime.redis_keys import ALERTS_QUEUE
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from scheduler.alerts import AlertsWorker
from tests.engine.helpers import deliveries
from tests.engine_fixtures import wait_for

SECRET = "whsec-TEST-signing-value-42"
SMTP_PASSWORD = "smtp-PASSWORD-value-77"
MAX_AGE_SECONDS = 300  # the README's verification example rejects timestamps older than 5 minutes


class BurstAlertsWorker(AlertsWorker):
    def subscribe(self) -> None:  # no command channel in a burst (see tests/engine/inprocess/engine.py)
        pass


@pytest.fixture
def deliver(engine_app: Any, connection: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Run the alerts worker (burst) in this process: it sweeps for due deliveries, then sends them."""
    import scheduler.worker

    monkeypatch.setattr(scheduler.worker, "_app", engine_app)
    monkeypatch.setenv("CHIME_EGRESS_ALLOW", "127.0.0.1/32")
    engine_app.config.update(SECRETS_KEY=Fernet.generate_key().decode(), PUBLIC_URL="https://chime.example.com",
                             ALERT_RETRY_FIRST_SECONDS=0.2, ALERT_RETRY_BUDGET_SECONDS=30,
                             ALERT_SWEEP_INTERVAL_SECONDS=0)
    return lambda: BurstAlertsWorker([ALERTS_QUEUE], connection=connection).work(burst=True)


# --------------------------------------------------------------------------- an HTTP receiver


def verify(secret: str, headers: Any, body: bytes, now: float) -> bool:
    """A receiver's check, written from the README: HMAC-SHA256 of "<timestamp>.<body>", fresh timestamp."""
    timestamp = headers.get("X-Chime-Timestamp", "")
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = timestamp.isdigit() and abs(now - int(timestamp)) <= MAX_AGE_SECONDS
    return fresh and hmac.compare_digest(expected, headers.get("X-Chime-Signature", ""))


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 500 until `accept_after` (monotonic), then 204."""

    def __init__(self, accept_after: float = 0.0) -> None:
        self.accept_after = accept_after
        self.requests: list[dict[str, Any]] = []
        self.accepted: Counter[str] = Counter()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = time.monotonic() >= receiver.accept_after
                delivery = self.headers.get("X-Chime-Delivery", "")
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path,
                                          "valid": verify(SECRET, self.headers, body, time.time())})
                if ok:
                    receiver.accepted[delivery] += 1
                self.send_response(204 if ok else 500)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/chime"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_channel(payload: dict[str, Any]) -> Any:
    with unit_of_work():
        return channels.create_channel(payload)


def webhook(url: str, name: str = "hook") -> Any:
    return make_channel({"name": name, "kind": "webhook", "config": {"url": url}, "secrets": {"secret": SECRET}})


@dataclass(frozen=True)
class Queued:
    id: int
    delivery_id: str
    channel_id: int


def alert(channel: Any, event: str = "failed", **extra: Any) -> Queued:
    """Queue an alert; its ids are read before the commit (no read transaction stays open afterwards)."""
    with unit_of_work():
        delivery = alerts.enqueue_delivery(channel, {"event": event, "title": f"Task nightly {event}",
                                                     "message": "exit code 1", **extra})
        assert delivery is not None
        queued = Queued(delivery.id, delivery.delivery_id, channel.id)
    return queued


def test_a_webhook_arrives_signed_with_the_documented_headers(deliver: Callable[[], None]) -> None:
    with Receiver() as receiver:
        delivery = alert(webhook(receiver.url), execution_id=None)
        deliver()
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert request["valid"], "the receiver's own check of X-Chime-Signature failed"
    assert headers["X-Chime-Event"] == "failed"
    assert headers["X-Chime-Delivery"] == delivery.delivery_id
    assert headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert event["event"] == "failed" and event["delivery_id"] == delivery.delivery_id
    assert not verify("another secret", headers, body, time.time())
    assert not verify(SECRET, headers, body, time.time() + MAX_AGE_SECONDS + 60), "a replay later is rejected"
    [row] = deliveries()
    assert (row.status, row.attempts, row.response_status) == ("delivered", 1, 204)
    assert [(a.attempt, a.ok, a.response_status) for a in row.attempt_log] == [(1, True, 204)]


def test_a_receiver_down_for_a_while_gets_every_alert_exactly_once(deliver: Callable[[], None]) -> None:
    with Receiver(accept_after=time.monotonic() + 2.0) as receiver:
        channel = webhook(receiver.url)
        sent = [alert(channel, task_id=None, title=f"alert {n}").delivery_id for n in range(10)]

        def all_delivered() -> bool:
            deliver()
            return all(row.status == "delivered" for row in deliveries())

        wait_for(all_delivered, 60, "every delivery to be delivered")
    assert sorted(receiver.accepted) == sorted(sent), "every alert arrived"
    assert set(receiver.accepted.values()) == {1}, "none arrived twice"
    assert all(request["valid"] for request in receiver.requests)
    retried = [row for row in deliveries() if row.attempts > 1]
    assert retried, "the receiver refused at first: some deliveries were retried"
    for row in retried:
        ids = {json.loads(r["body"])["delivery_id"] for r in receiver.requests
               if r["headers"]["X-Chime-Delivery"] == row.delivery_id}
        assert ids == {row.delivery_id}, "a retry keeps its delivery id"
        assert [a.ok for a in row.attempt_log][-1] is True and not any(a.ok for a in row.attempt_log[:-1])


def test_a_delivery_that_exhausts_its_retries_fails_with_an_error_notification(
        engine_app: Any, deliver: Callable[[], None]) -> None:
    engine_app.config.update(ALERT_RETRY_FIRST_SECONDS=0.25, ALERT_RETRY_BUDGET_SECONDS=1.0)
    with Receiver(accept_after=float("inf")) as receiver:
        alert(webhook(receiver.url), event="recovered")

        def settled() -> bool:
            deliver()
            return deliveries()[0].status != "pending"

        wait_for(settled, 30, "the delivery to give up")
    [row] = deliveries()
    # attempts scheduled at 0 s, 0.25 s and 0.75 s; the next would be at 1.75 s, past the 1 s budget
    assert (row.status, row.attempts, row.response_status) == ("failed", 3, 500)
    assert len(receiver.requests) == 3
    assert {r["headers"]["X-Chime-Delivery"] for r in receiver.requests} == {row.delivery_id}
    notice = db.session.scalar(select(Notification).where(Notification.level == "ERROR"))
    assert notice is not None and "hook" in notice.title and "HTTP 500" in notice.message


def test_a_worker_killed_mid_delivery_does_not_lose_it(deliver: Callable[[], None], connection: Any) -> None:
    ten_minutes_ago = utcnow() - dt.timedelta(minutes=10)
    with Receiver() as receiver:
        channel = webhook(receiver.url)
        with unit_of_work():
            delivery = alerts.enqueue_delivery(channel, {"event": "failed"}, now=ten_minutes_ago)
            assert delivery is not None
            row_id, delivery_id = delivery.id, delivery.delivery_id
        connection.delete(f"rq:queue:{ALERTS_QUEUE}")  # the job is gone with the worker that took it
        # a worker claimed the first attempt ten minutes ago and was killed (its lease has run out)
        assert alerts.claim(row_id, 0, ten_minutes_ago) is not None
        deliver()
    [row] = deliveries()
    assert row.status == "delivered" and row.attempts == 2
    assert list(receiver.accepted) == [delivery_id]


def test_a_lost_push_is_found_by_the_sweep(deliver: Callable[[], None], connection: Any) -> None:
    with Receiver() as receiver:
        delivery = alert(webhook(receiver.url))
        connection.flushall()  # Redis lost the queued job
        deliver()
    assert list(receiver.accepted) == [delivery.delivery_id]


def test_a_duplicate_job_sends_nothing_twice(deliver: Callable[[], None], connection: Any) -> None:
    with Receiver() as receiver:
        delivery = alert(webhook(receiver.url))
        deliver()
        assert alerts.attempt(delivery.id, 0) is None  # the same job again: the claim refuses it
    assert len(receiver.requests) == 1


def test_the_egress_rules_refuse_at_send_time_and_the_error_says_so(
        deliver: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    with Receiver() as receiver:
        alert(webhook(receiver.url))
        monkeypatch.setenv("CHIME_EGRESS_ALLOW", "")
        deliver()
    assert receiver.requests == []
    row = deliveries()[0]
    assert row.status == "pending" and "refused" in (row.error or "") and "loopback" in (row.error or "")


def test_a_slack_channel_gets_text_and_blocks_and_its_url_never_shows_in_an_error(
        deliver: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    with Receiver() as receiver:
        channel = make_channel({"name": "slack", "kind": "slack", "secrets": {"url": receiver.url}})
        alert(channel, title="nightly failed", message="exit code 1", execution_id=None)
        deliver()
        body = json.loads(receiver.requests[0]["body"])
        assert body["text"].startswith("nightly failed") and body["blocks"][0]["type"] == "section"
        alert(channel)
        receiver.server.shutdown()
        receiver.server.server_close()
        deliver()
        receiver.thread.join()
        receiver.server = type("Stopped", (), {"shutdown": lambda self: None, "server_close": lambda self: None})()
    failed = deliveries()[1]
    assert failed.status == "pending" and failed.error
    assert "/hooks/chime" not in failed.error and str(receiver.url) not in failed.error


# --------------------------------------------------------------------------- e-mail


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], tuple[Inbox, int]]]:
    """smtp(security): a real SMTP server on 127.0.0.1 with a self-signed certificate the client trusts,
    offering STARTTLS (required before AUTH) or implicit TLS; logins need SMTP_PASSWORD."""
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    monkeypatch.setattr(chime.senders, "tls_context", lambda: ssl.create_default_context(cafile=str(cert)))
    controllers: list[Controller] = []

    def start(security: str) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        options: dict[str, Any] = {"authenticator": check_login, "auth_require_tls": True}
        if security == "tls":  # the whole connection is TLS; aiosmtpd's auth_require_tls knows only STARTTLS
            options.update(ssl_context=server_tls, auth_require_tls=False)
        else:
            options.update(tls_context=server_tls, require_starttls=True)
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        controller.stop()


def email_channel(port: int, security: str, password: str = SMTP_PASSWORD) -> Any:
    return make_channel({"name": f"mail-{security}", "kind": "email",
                         "config": {"host": "127.0.0.1", "port": port, "security": security, "username": "chime",
                                    "from_address": "chime@example.com", "to": ["ops@example.com", "b@example.com"]},
                         "secrets": {"password": password}})


@pytest.mark.parametrize("security", ["starttls", "tls"], ids=["STARTTLS", "implicit TLS"])
def test_an_email_alert_reaches_a_real_smtp_server_with_a_link_to_the_run(
        deliver: Callable[[], None], smtp: Callable[[str], tuple[Inbox, int]], security: str) -> None:
    inbox, port = smtp(security)
    delivery = alert(email_channel(port, security), execution_id=None, task_id=None, link=None,
                     title="Task nightly failed", message="exit code 1")
    with unit_of_work():  # an event about a run links to the run's page under CHIME_PUBLIC_URL
        task = Task(name="nightly", job="noop", schedule_type="INTERVAL", interval_seconds=60)
        db.session.add(task)
        db.session.flush()
        run = Execution(task_id=task.id, task_name=task.name, status="FAILED", trigger="SCHEDULE",
                        scheduled_for=utcnow())
        db.session.add(run)
        db.session.flush()
        about_run = alerts.enqueue_delivery(channels.get_channel(delivery.channel_id), {
            "event": "failed", "title": "run failed", "task_id": task.id, "execution_id": run.id})
        link, expected = (about_run.payload["link"] if about_run else None), f"https://chime.example.com/logs/{run.id}"
    deliver()
    assert [(row.status, row.error) for row in deliveries()] == [("delivered", None)] * 2
    (recipients, first), (_, second) = inbox.messages
    assert recipients == ["ops@example.com", "b@example.com"]
    assert first["Subject"] == "[Chime] Task nightly failed" and first["From"] == "chime@example.com"
    assert "exit code 1" in first.get_payload() and first["X-Chime-Delivery"] == delivery.delivery_id
    assert expected in second.get_payload()
    assert link == expected


def test_a_refused_smtp_login_is_a_readable_delivery_failure_without_the_password(
        deliver: Callable[[], None], smtp: Callable[[str], tuple[Inbox, int]]) -> None:
    inbox, port = smtp("starttls")
    alert(email_channel(port, "starttls", password="wrong-PASSWORD-value-13"))
    deliver()
    row = deliveries()[0]
    assert inbox.messages == []
    assert row.status == "pending" and row.response_status == 535
    assert "535" in (row.error or "") and "wrong-PASSWORD-value-13" not in (row.error or "")
    assert row.attempt_log[0].response_status == 535 and not row.attempt_log[0].ok
