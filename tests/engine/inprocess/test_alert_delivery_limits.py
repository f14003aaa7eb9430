"""Alert delivery at its limits, in this process, on a real Redis and both databases: an attempt has a hard
overall deadline shorter than its lease; a stale attempt cannot overwrite a newer one; an e-mail accepted
by the server is delivered whatever the goodbye does; a delivery whose workers keep dying fails with its
ERROR notification; a slow delivery does not hold back an engine alert; the SMTP host is vetted at send;
a webhook URL is write-only (and a channel saved before that still delivers)."""
from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from rq import Queue
from sqlalchemy import select, update

from chime import alerts, channel_secrets, rules, senders
from chime.extensions import db
from chime.models import AlertRule, Channel, Delivery, DeliveryAttempt, Notification
from chime.redis_keys import ALERTS_QUEUE
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from scheduler.alerts import sweep_forever
from tests.engine.helpers import deliveries
from tests.engine.inprocess.test_alert_delivery import (SECRET, Receiver, alert, deliver, make_channel,  # noqa: F401
                                                        webhook)
from tests.engine_fixtures import wait_for

BANNER = b"SSH-2.0-OpenSSH_9.6 internal-build-host.corp.example"

pytestmark = pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)


# --------------------------------------------------------------------------- raw servers on 127.0.0.1


class RawServer:
    """A TCP server on 127.0.0.1 whose every connection is handled by `serve(connection)` on a thread."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.serve = serve
        self.connected = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            self.connected.set()
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            self.serve(connection)
        except OSError:
            pass
        finally:
            connection.close()

    def close(self) -> None:
        try:  # wakes the accepting thread: a listener only closed would go on listening until accept returns
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for connection in self.connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()


@contextmanager
def raw_server(serve: Callable[[socket.socket], None]) -> Iterator[RawServer]:
    server = RawServer(serve)
    try:
        yield server
    finally:
        server.close()


def trickle(connection: socket.socket, data: bytes, pause: threading.Event, every_seconds: float) -> None:
    """Send `data` one byte at a time, each well within any per-operation timeout, until stopped."""
    for byte in data:
        if pause.wait(every_seconds):
            return
        connection.sendall(bytes([byte]))


def smtp_session(accepted: list[bytes], on_quit: bytes | None) -> Callable[[socket.socket], None]:
    """A minimal SMTP server: accepts every message; answers QUIT with `on_quit`, or (None) hangs up on the
    first command after the message, NOOP or QUIT (a relay that closes once it has the message)."""

    def serve(connection: socket.socket) -> None:
        stream = connection.makefile("rwb")

        def say(line: bytes) -> None:
            stream.write(line + b"\r\n")
            stream.flush()

        say(b"220 test ESMTP")
        body: list[bytes] | None = None
        for raw in stream:
            line = raw.rstrip(b"\r\n")
            if body is not None:
                if line == b".":
                    accepted.append(b"\n".join(body))
                    body = None
                    say(b"250 2.0.0 queued as X")
                else:
                    body.append(line)
                continue
            verb = line[:4].upper()
            if on_quit is None and verb in (b"NOOP", b"QUIT"):
                connection.close()
                return
            if verb in (b"EHLO", b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                say(b"250 ok")
            elif verb == b"DATA":
                body = []
                say(b"354 go ahead")
            elif verb == b"QUIT":
                say(on_quit or b"221 bye")
                connection.close()
                return

    return serve


def relay(port: int, name: str = "relay", host: str = "127.0.0.1") -> Any:
    """An e-mail channel to a local relay: no TLS, no login."""
    return make_channel({"name": name, "kind": "email",
                         "config": {"host": host, "port": port, "security": "none", "timeout_seconds": 300,
                                    "from_address": "chime@example.com", "to": ["ops@example.com"]}})


# --------------------------------------------------------------------------- the attempt's deadline


def test_an_http_answer_trickled_byte_by_byte_is_cut_off_at_the_attempts_deadline(
        engine_app: Any, deliver: Callable[[], None]) -> None:
    engine_app.config.update(ALERT_ATTEMPT_DEADLINE_SECONDS=1)
    stop = threading.Event()
    head = b"HTTP/1.1 204 No Content\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\n"

    def slow_receiver(connection: socket.socket) -> None:
        connection.recv(65536)
        trickle(connection, head, stop, 0.1)  # 0.1 s a byte, far within the 10 s per read: 20 s in all

    with raw_server(slow_receiver) as server:
        queued = alert(webhook(f"http://127.0.0.1:{server.port}/hook"))
        deliver()
        stop.set()
    [row] = deliveries()
    assert row.delivery_id == queued.delivery_id
    assert row.status == "pending" and "deadline" in (row.error or ""), row.error
    assert [a.ok for a in row.attempt_log] == [False]


def test_an_smtp_greeting_trickled_byte_by_byte_is_cut_off_at_the_attempts_deadline(
        engine_app: Any, deliver: Callable[[], None]) -> None:
    engine_app.config.update(ALERT_ATTEMPT_DEADLINE_SECONDS=1)
    stop, accepted = threading.Event(), []

    def slow_server(connection: socket.socket) -> None:
        trickle(connection, b"220 " + b"s" * 200 + b"\r\n", stop, 0.1)
        smtp_session(accepted, b"221 bye")(connection)

    with raw_server(slow_server) as server:
        alert(relay(server.port))
        deliver()
        stop.set()
    [row] = deliveries()
    assert row.status == "pending" and "deadline" in (row.error or ""), row.error
    assert accepted == []


def test_an_attempts_lease_outlasts_its_deadline(engine_app: Any, deliver: Callable[[], None]) -> None:
    engine_app.config.update(ALERT_ATTEMPT_DEADLINE_SECONDS=45)
    with Receiver() as receiver:
        queued = alert(webhook(receiver.url))
    now = utcnow()
    claimed = alerts.claim(queued.id, 0, now)
    assert claimed is not None and claimed.deadline_seconds == 45
    [row] = deliveries()
    assert row.next_attempt_at is not None
    assert row.next_attempt_at - now == dt.timedelta(seconds=45 + alerts.LEASE_MARGIN_SECONDS)


# --------------------------------------------------------------------------- a stale attempt


def claim_twice(queued: Any) -> tuple[alerts.Claimed, alerts.Claimed, dt.datetime]:
    """Worker A claims; its lease runs out (its worker hung); worker B claims the next attempt."""
    first_at = utcnow()
    first = alerts.claim(queued.id, 0, first_at)
    assert first is not None
    second_at = first_at + dt.timedelta(seconds=alerts.lease_seconds(first.deadline_seconds) + 1)
    second = alerts.claim(queued.id, 1, second_at)
    assert second is not None
    return first, second, second_at


def test_a_stale_attempts_failure_does_not_undo_a_newer_attempts_delivery(deliver: Callable[[], None]) -> None:
    with Receiver() as receiver:
        queued = alert(webhook(receiver.url))
    first, second, second_at = claim_twice(queued)
    assert alerts.record(queued.id, second, senders.Outcome(True, 204), 5, second_at) == "delivered"
    assert alerts.record(queued.id, first, senders.Outcome(False, error="no answer"), 5, utcnow()) == "delivered"
    [row] = deliveries()
    assert (row.status, row.attempts, row.error, row.next_attempt_at) == ("delivered", 2, None, None)
    assert sorted((a.attempt, a.ok) for a in row.attempt_log) == [(1, False), (2, True)], "both attempts recorded"
    assert db.session.scalar(select(Notification).where(Notification.level == "ERROR")) is None


def test_a_stale_attempts_failure_leaves_the_newer_attempts_lease_alone(deliver: Callable[[], None]) -> None:
    with Receiver() as receiver:
        queued = alert(webhook(receiver.url))
    first, second, second_at = claim_twice(queued)
    [leased] = deliveries()
    alerts.record(queued.id, first, senders.Outcome(False, 500, error="HTTP 500"), 5, utcnow())
    [row] = deliveries()
    assert (row.status, row.attempts, row.error) == ("pending", 2, None)
    assert row.next_attempt_at == leased.next_attempt_at, "attempt 2 keeps its lease: nobody claims it meanwhile"


# --------------------------------------------------------------------------- after the server accepted


@pytest.mark.parametrize("on_quit", [None, b"421 closing, and not politely"], ids=["hangs up after the message", "421 to QUIT"])
def test_an_email_the_server_accepted_is_delivered_whatever_the_goodbye(
        deliver: Callable[[], None], on_quit: bytes | None) -> None:
    accepted: list[bytes] = []
    with raw_server(smtp_session(accepted, on_quit)) as server:
        alert(relay(server.port))
        deliver()
        deliver()  # anything retried would be sent now
    [row] = deliveries()
    assert (row.status, row.attempts, row.response_status) == ("delivered", 1, 250)
    assert len(accepted) == 1, "the e-mail was sent once"
    assert row.attempt_log[0].reply == "2.0.0 queued as X"


# --------------------------------------------------------------------------- workers that keep dying


def test_a_delivery_whose_workers_keep_dying_fails_with_an_error_notification_once_its_budget_is_spent(
        engine_app: Any, deliver: Callable[[], None]) -> None:
    engine_app.config.update(ALERT_RETRY_FIRST_SECONDS=30, ALERT_RETRY_BUDGET_SECONDS=3600)
    with Receiver() as receiver:
        queued = alert(webhook(receiver.url))
        now, claims = utcnow(), 0
        # each attempt's worker is killed mid-send (nothing recorded); the sweep claims it again after the lease
        while (claimed := alerts.claim(queued.id, claims, now)) is not None:
            claims += 1
            now += dt.timedelta(seconds=alerts.lease_seconds(claimed.deadline_seconds) + 1)
            assert claims <= 20, "the claims never stop"
        deliver()
    # the schedule allows attempts at 0, 30, 90, 210, 450, 930 and 1890 s: 7 (README); the 8th is past 3600 s
    assert claims == 7
    [row] = deliveries()
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 7, None)
    assert "never finished" in (row.error or "")
    notice = db.session.scalar(select(Notification).where(Notification.level == "ERROR"))
    assert notice is not None and "hook" in notice.title and "7 attempt" in notice.message
    assert receiver.requests == [], "a failed delivery is not sent by the worker afterwards"


# --------------------------------------------------------------------------- disabled and muted channels


def test_a_queued_alert_to_a_channel_disabled_since_is_not_sent_but_a_test_send_is(
        deliver: Callable[[], None]) -> None:
    with Receiver() as receiver:
        channel = webhook(receiver.url)
        queued = alert(channel)
        with unit_of_work():
            db.session.get(Channel, queued.channel_id).enabled = False
        from chime import channels
        with unit_of_work():
            test_send = channels.send_test(channels.get_channel(queued.channel_id))
            test_id = test_send.delivery_id
        deliver()
    assert list(receiver.accepted) == [test_id]
    row = next(r for r in deliveries() if r.delivery_id == queued.delivery_id)
    assert (row.status, row.attempts, row.error) == ("failed", 0, alerts.DISABLED_ERROR)
    assert db.session.scalar(select(Notification).where(Notification.level == "ERROR")) is None


def test_a_queued_alert_to_a_channel_muted_since_is_still_delivered(deliver: Callable[[], None]) -> None:
    with Receiver() as receiver:
        queued = alert(webhook(receiver.url))
        with unit_of_work():
            db.session.get(Channel, queued.channel_id).muted_until = utcnow() + dt.timedelta(hours=1)
        deliver()
    assert list(receiver.accepted) == [queued.delivery_id], "the alert was made before the mute"


# --------------------------------------------------------------------------- a slow delivery and engine alerts


def test_a_blackholed_smtp_delivery_does_not_hold_back_an_engine_alert(
        engine_app: Any, deliver: Callable[[], None], connection: Any) -> None:
    """The sweep (drain the outbox, queue what is due) has its own thread: while the worker is stuck in an
    e-mail attempt to a server that never answers, a `scheduler_down` event becomes a delivery queued at
    the front of the alerts queue, and it is the worker's next job."""
    engine_app.config.update(ALERT_SWEEP_INTERVAL_SECONDS=0.1, ALERT_RETRY_FIRST_SECONDS=600)  # no retry in this run
    seen: dict[str, Any] = {}
    stop = threading.Event()
    with Receiver() as receiver, raw_server(lambda connection: stop.wait()) as blackhole:
        hook = webhook(receiver.url)
        with unit_of_work():
            db.session.add(AlertRule(task_id=None, events=["scheduler_down"], channel_ids=[hook.id],
                                     group_window_seconds=0))
        slow = alert(relay(blackhole.port, "slow"))
        alert(relay(blackhole.port, "slow-2"))  # a backlog behind the stuck attempt

        def meanwhile() -> None:
            try:
                blackhole.connected.wait(60)
                with engine_app.app_context():
                    with unit_of_work():
                        rules.emit("scheduler_down", details={"title": "The scheduler is down"})
                    seen["queued"] = wait_for(lambda: engine_alert_at_front(connection), 30,
                                              "the engine alert queued at the front")
                    seen["attempts_while_stuck"] = attempt_rows(slow.id)
            finally:
                stop.set()  # the blackhole hangs up: the stuck attempt ends
                blackhole.close()

        sweeper = threading.Thread(target=sweep_forever, args=(engine_app, stop_sweeper := threading.Event()))
        helper = threading.Thread(target=meanwhile)
        sweeper.start()
        helper.start()
        try:
            deliver()
        finally:
            helper.join()
            stop_sweeper.set()
            sweeper.join()
        assert seen["attempts_while_stuck"] == 0, "the e-mail attempt was still in progress"
        assert seen["queued"], "the scheduler_down delivery was queued at the front while the worker was stuck"
        [engine_alert] = [r for r in receiver.requests if r["headers"]["X-Chime-Event"] == "scheduler_down"]
        assert engine_alert["valid"]


def engine_alert_at_front(connection: Any) -> bool:
    db.session.rollback()
    pk = db.session.scalar(select(Delivery.id).where(Delivery.event == "scheduler_down"))
    db.session.rollback()
    head = Queue(ALERTS_QUEUE, connection=connection).job_ids[:1]
    return pk is not None and head == [alerts.job_id(pk, 0)]


def attempt_rows(delivery_pk: int) -> int:
    count = len(db.session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_pk)).all())
    db.session.rollback()
    return count


# --------------------------------------------------------------------------- the SMTP host at send time


def test_an_smtp_host_name_that_resolves_to_a_refused_address_is_refused_at_send(
        deliver: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    accepted: list[bytes] = []
    with raw_server(smtp_session(accepted, b"221 bye")) as server:
        alert(relay(server.port, host="localhost"))  # a name: nothing to refuse without resolving it
        monkeypatch.setenv("CHIME_EGRESS_ALLOW", "")
        deliver()
        assert not server.connected.is_set(), "no connection was made"
    row = deliveries()[0]
    assert row.status == "pending" and "refused" in (row.error or "") and "loopback" in (row.error or "")


def test_a_server_that_does_not_speak_smtp_is_not_quoted_in_the_error(deliver: Callable[[], None]) -> None:
    def ssh(connection: socket.socket) -> None:
        connection.sendall(BANNER + b"\r\n")
        connection.recv(1024)

    with raw_server(ssh) as server:
        alert(relay(server.port))
        deliver()
    row = deliveries()[0]
    assert row.status == "pending" and "did not answer in SMTP" in (row.error or ""), row.error
    assert b"internal-build-host" not in (row.error or "").encode()
    assert all("internal-build-host" not in (a.error or "") + (a.reply or "") for a in row.attempt_log)


# --------------------------------------------------------------------------- write-only webhook URLs


def test_a_webhook_url_is_sealed_and_a_channel_saved_before_that_still_delivers(deliver: Callable[[], None]) -> None:
    from chime import channels

    with Receiver() as receiver:
        url = receiver.url + "?token=TOKEN-in-the-url-55"
        channel = webhook(url)
        assert channel.config == {"url": f"http://127.0.0.1:{receiver.server.server_port}/…"}
        assert channel_secrets.unseal(channel.secrets)["url"] == url
        sealed = alert(channel)
        deliver()
        with unit_of_work():  # a channel as saved before URLs were sealed: the URL in its config
            db.session.execute(update(Channel).where(Channel.id == channel.id).values(
                config={"url": url}, secrets=channel_secrets.seal({"secret": SECRET}), secret_names=["secret"]))
        legacy = alert(channels.get_channel(channel.id))
        deliver()
        with unit_of_work():
            view = channels.channel_view(channels.get_channel(channel.id))
        assert "TOKEN-in-the-url-55" not in str(view) and view["secrets"] == {"secret": "set", "url": "set"}
        with unit_of_work():  # its next save seals the URL
            saved = channels.update_channel(channels.get_channel(channel.id), {"name": "renamed"})
            assert saved.config == view["config"] and saved.secret_names == ["secret", "url"]
        resealed = alert(channels.get_channel(channel.id))
        deliver()
    assert {r["path"] for r in receiver.requests} == {"/hooks/chime?token=TOKEN-in-the-url-55"}
    assert set(receiver.accepted) == {sealed.delivery_id, legacy.delivery_id, resealed.delivery_id}
    assert all(r["valid"] for r in receiver.requests)
