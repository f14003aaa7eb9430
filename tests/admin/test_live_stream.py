"""The admin's live stream (GET /events): change events published after commits, engine events when the
scheduler's heartbeat goes stale or comes back, and the per-process cap on open streams; real Redis."""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from chime.extensions import db
from chime.models import User
from chime.live import PUBLISHER, channel_of
from chime.redis_keys import SCHEDULER_HEARTBEAT_KEY
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from scheduler import health
from tests.admin.conftest import USERNAME, add_execution, add_task
from webapp import live
from webapp.auth import create_user
from webapp.live import hub_for

WAIT_SECONDS = 10


def wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def next_message(listener: Any, timeout: float = WAIT_SECONDS) -> dict[str, Any] | None:
    """The next published message (the subscription's own confirmation is not one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = listener.get_message(timeout=max(0.0, deadline - time.monotonic()))
        if message is not None and message["type"] == "message":
            return json.loads(message["data"])
    return None


class Stream:
    """One open /events response, read event by event."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.chunks: Iterator[bytes] = iter(response.response)
        self.buffer = ""

    def next_block(self) -> str:
        while "\n\n" not in self.buffer:
            self.buffer += next(self.chunks).decode()
        block, _, self.buffer = self.buffer.partition("\n\n")
        return block

    def next_event(self) -> tuple[str, dict[str, Any]]:
        """The next event's name and data, skipping comment lines (heartbeats)."""
        while True:
            lines = [line for line in self.next_block().splitlines() if not line.startswith(":")]
            fields = dict(line.split(": ", 1) for line in lines)
            if "event" in fields:
                return fields["event"], json.loads(fields["data"])

    def ended(self) -> bool:
        """Whether the server ends the stream before it sends anything more: an event, or the heartbeat
        that comes HEARTBEAT_SECONDS later, is False."""
        for chunk in self.chunks:
            if b"event:" in chunk or b"heartbeat" in chunk:
                return False
        return True

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def open_stream(admin: Any, app: Any, redis_client: Any) -> Iterator[Any]:
    streams: list[Stream] = []

    hub = hub_for(app.config["REDIS_URL"])
    assert hub.open_streams() == 0, "a test before this one left a stream open (every response must be closed)"
    wait_until(lambda: hub.thread is None, "the previous test's streams to end")

    def open_one(**kwargs: Any) -> Stream:
        response = admin.get("/events", **kwargs)
        assert response.status_code == 200
        stream = Stream(response)
        streams.append(stream)
        assert stream.next_block().startswith("retry: ")
        wait_until(lambda: redis_client.pubsub_numsub(channel_of(redis_client))[0][1] >= 1 and hub.engine is not None,
                   "the hub to subscribe and read the engine")
        return stream

    yield open_one
    for stream in streams:
        stream.close()
    assert hub.open_streams() == 0, "a closed stream leaves the hub"


def test_a_commit_that_stores_a_run_publishes_one_change_naming_its_task(app: Any, redis_client: Any) -> None:
    task = add_task("publisher")
    PUBLISHER.flush()  # the task's own change goes out now, before we listen
    listener = redis_client.pubsub()
    listener.subscribe(channel_of(redis_client))
    try:
        add_execution(task, "FAILED", message="boom")
        assert next_message(listener) == {"kinds": ["run"], "task_ids": [task.id]}
        assert next_message(listener, timeout=0.3) is None
    finally:
        listener.close()


def test_a_rolled_back_change_publishes_nothing(app: Any, redis_client: Any) -> None:
    listener = redis_client.pubsub()
    listener.subscribe(channel_of(redis_client))
    try:
        with pytest.raises(RuntimeError):
            with unit_of_work():
                add_task_without_commit("never kept")
                raise RuntimeError("changed my mind")
        assert next_message(listener, timeout=0.5) is None
    finally:
        listener.close()


def add_task_without_commit(name: str) -> None:
    from chime.models import Task

    db.session.add(Task(name=name, job="echo", args={}, schedule_type="INTERVAL", interval_seconds=60,
                        timezone="UTC"))
    db.session.flush()


def test_the_stream_is_never_cached_and_tells_the_browser_when_to_reconnect(admin: Any, open_stream: Any) -> None:
    stream = open_stream()
    assert stream.response.mimetype == "text/event-stream"
    assert stream.response.headers["Cache-Control"] == "no-store"


def test_a_new_failed_run_reaches_an_open_stream(app: Any, open_stream: Any) -> None:
    stream = open_stream()
    task = add_task("watched")
    assert stream.next_event() == ("change", {"kinds": ["task"], "task_ids": [task.id]})
    add_execution(task, "FAILED", message="boom")
    assert stream.next_event() == ("change", {"kinds": ["run"], "task_ids": [task.id]})


def test_the_stream_says_when_the_scheduler_comes_back_and_when_it_stops_beating(
        open_stream: Any, redis_client: Any) -> None:
    stream = open_stream()
    health.beat_scheduler(redis_client, "scheduler-1", True)
    assert stream.next_event() == ("engine", {"redis": True, "scheduler": True, "workers": 0})
    redis_client.delete(SCHEDULER_HEARTBEAT_KEY)  # what a heartbeat older than the stale limit reads as
    assert stream.next_event() == ("engine", {"redis": True, "scheduler": False, "workers": 0})


def test_a_stale_heartbeat_is_noticed_without_any_write(open_stream: Any, redis_client: Any) -> None:
    health.beat_scheduler(redis_client, "scheduler-1", True)
    stream = open_stream()
    stale = time.time() - 14.0  # alive for about one more second, then stale (SCHEDULER_STALE_AFTER_SECONDS)
    health.beat_scheduler(redis_client, "scheduler-1", True, now_epoch=stale)
    assert stream.next_event() == ("engine", {"redis": True, "scheduler": False, "workers": 0})


def test_signed_out_visitors_get_the_login_page_not_a_stream(client: Any) -> None:
    response = client.get("/events")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_beyond_the_cap_of_open_streams_the_server_answers_503_with_retry_after(
        app: Any, admin: Any, open_stream: Any) -> None:
    app.config["LIVE_MAX_STREAMS"] = 1
    open_stream()
    refused = admin.get("/events")
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) > 0


def test_a_closed_stream_leaves_the_hub(app: Any, open_stream: Any) -> None:
    hub = hub_for(app.config["REDIS_URL"])
    before = hub.open_streams()
    stream = open_stream()
    assert hub.open_streams() == before + 1
    stream.close()
    assert hub.open_streams() == before


def test_a_disabled_users_stream_ends_at_once(app: Any, admin: Any, open_stream: Any) -> None:
    stream = open_stream()
    with unit_of_work():
        db.session.scalar(select(User).where(User.username == USERNAME)).active = False
    assert stream.ended()


def test_signing_out_ends_the_stream_of_the_same_session(app: Any, admin: Any, open_stream: Any) -> None:
    stream = open_stream()
    admin.post("/logout")
    assert stream.ended()


def test_another_users_sign_out_leaves_the_stream_alone(app: Any, admin: Any, open_stream: Any) -> None:
    stream = open_stream()
    other = create_user("someone else", "another password 123")
    with unit_of_work():
        db.session.get(User, other.id).session_generation += 1
    task = add_task("still live")
    assert stream.next_event() == ("change", {"kinds": ["task"], "task_ids": [task.id]})


def test_a_session_ended_by_a_write_nobody_announced_is_noticed_by_the_streams_own_check(
        app: Any, admin: Any, open_stream: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(live, "SESSION_CHECK_SECONDS", 0.0)
    stream = open_stream()
    with unit_of_work():  # a bulk UPDATE: no flush shows it, so nothing is published
        db.session.execute(update(User).where(User.username == USERNAME)
                           .values(session_generation=User.session_generation + 1))
    hub_for(app.config["REDIS_URL"]).send("change", '{"kinds":["run"],"task_ids":[1]}')
    assert stream.ended(), "the event was not sent: the session was checked first"


def test_a_stream_whose_browser_hung_up_ends_and_gives_its_slot_back_without_writing(
        app: Any, open_stream: Any) -> None:
    browser, server = socket.socketpair()
    try:
        stream = open_stream(environ_overrides={"gunicorn.socket": server})
        hub = hub_for(app.config["REDIS_URL"])
        assert hub.open_streams() == 1
        browser.close()
        assert stream.ended()
        stream.close()
        assert hub.open_streams() == 0
    finally:
        server.close()


def test_a_peek_tells_an_open_connection_from_one_the_client_closed() -> None:
    browser, server = socket.socketpair()
    assert live.hung_up(server) is False
    browser.sendall(b"x")
    assert live.hung_up(server) is False, "data waiting is not a hang-up"
    browser.close()
    server.recv(1)
    assert live.hung_up(server) is True
    server.close()
    assert live.hung_up(server) is True, "a closed socket: nothing more can be sent"
    assert live.hung_up(None) is False


def test_the_hub_outlives_a_corrupt_heartbeat_and_keeps_forwarding(app: Any, open_stream: Any,
                                                                   redis_client: Any) -> None:
    stream = open_stream()
    hub = hub_for(app.config["REDIS_URL"])
    redis_client.hset(SCHEDULER_HEARTBEAT_KEY, "broken", "not json")
    try:
        wait_until(lambda: hub.failed_passes > 0, "the hub to read the corrupt heartbeat")
        task = add_task("after the corruption")
        assert stream.next_event() == ("change", {"kinds": ["task"], "task_ids": [task.id]})
        assert hub.thread is not None and hub.thread.is_alive()
    finally:
        redis_client.hdel(SCHEDULER_HEARTBEAT_KEY, "broken")


def test_a_hub_whose_thread_ended_starts_another_for_the_next_stream(app: Any, open_stream: Any) -> None:
    hub = hub_for(app.config["REDIS_URL"])
    with hub.lock:
        hub.thread = threading.Thread(target=lambda: None)  # what a thread that died leaves behind
    stream = open_stream()
    assert hub.thread.is_alive()
    task = add_task("forwarded again")
    assert stream.next_event() == ("change", {"kinds": ["task"], "task_ids": [task.id]})


def test_disabling_a_user_publishes_their_id_and_a_sign_in_publishes_nothing_about_users(
        app: Any, redis_client: Any) -> None:
    user = create_user("watched user", "a password 12345")
    listener = redis_client.pubsub()
    listener.subscribe(channel_of(redis_client))
    try:
        with unit_of_work():
            db.session.get(User, user.id).last_login_at = utcnow()
        assert next_message(listener, timeout=0.5) is None
        with unit_of_work():
            db.session.get(User, user.id).active = False
        assert next_message(listener) == {"kinds": [], "task_ids": [], "user_ids": [user.id]}
    finally:
        listener.close()
