"""The admin's live stream (GET /events): change events published after commits, engine events when the
scheduler's heartbeat goes stale or comes back, and the per-process cap on open streams; real Redis."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chime.extensions import db
from chime.live import channel_of
from chime.redis_keys import SCHEDULER_HEARTBEAT_KEY
from chime.unit_of_work import unit_of_work
from scheduler import health
from tests.admin.conftest import add_execution, add_task
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

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def open_stream(admin: Any, app: Any, redis_client: Any) -> Iterator[Any]:
    streams: list[Stream] = []

    hub = hub_for(app.config["REDIS_URL"])
    with hub.lock:  # streams other tests in this process opened through the test client and never read
        hub.inboxes.clear()
    wait_until(lambda: hub.thread is None, "the previous test's streams to end")

    def open_one() -> Stream:
        response = admin.get("/events")
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


def test_a_commit_that_stores_a_run_publishes_one_change_naming_its_task(app: Any, redis_client: Any) -> None:
    task = add_task("publisher")
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
