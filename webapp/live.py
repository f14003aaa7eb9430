"""The admin's live stream: Server-Sent Events fed from Redis pub/sub and from the engine's heartbeats.

One `Hub` per web process and Redis URL holds one Redis subscription (chime.live's channel) for
all of that process's open streams, and checks the engine every ENGINE_CHECK_SECONDS: the scheduler
going stale or coming back, the number of workers and Redis itself are not writes anyone publishes,
so the hub notices them and sends an "engine" event when they change. Each open stream is a bounded
queue the hub fans out to; the hub's thread runs only while a stream is open. At most
LIVE_MAX_STREAMS streams per process (each holds one of gunicorn's threads): beyond it, 503.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from redis.exceptions import RedisError

from chime.extensions import connect_redis
from chime.live import channel_of
from scheduler import health

log = logging.getLogger(__name__)

ENGINE_CHECK_SECONDS = 1.0      # how often the hub reads the heartbeats and the workers
HEARTBEAT_SECONDS = 15.0        # a comment line this often keeps proxies from closing an idle stream
RETRY_MILLISECONDS = 3000       # the browser's reconnect delay after a dropped stream
STREAM_LIFETIME_SECONDS = 300   # a stream ends after this; the browser reconnects (sessions re-checked)
BUSY_RETRY_AFTER_SECONDS = 30   # the Retry-After of a 503 when the process holds its maximum of streams
INBOX_SIZE = 100                # events a slow stream may fall behind by before the hub drops them
END = "end"                     # not an event: tells a stream to finish (see end_all_streams)


class Hub:
    """Fans out live events to the open streams of this process."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.inboxes: set[queue.Queue[tuple[str, str]]] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.engine: dict[str, Any] | None = None

    def subscribe(self, limit: int) -> queue.Queue[tuple[str, str]] | None:
        """A new stream's inbox, or None when `limit` streams are open already."""
        with self.lock:
            if len(self.inboxes) >= limit:
                return None
            inbox: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=INBOX_SIZE)
            self.inboxes.add(inbox)
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="chime-live-hub", daemon=True)
                self.thread.start()
            return inbox

    def unsubscribe(self, inbox: queue.Queue[tuple[str, str]]) -> None:
        with self.lock:
            self.inboxes.discard(inbox)

    def open_streams(self) -> int:
        with self.lock:
            return len(self.inboxes)

    def send(self, kind: str, data: str) -> None:
        with self.lock:
            inboxes = list(self.inboxes)
        for inbox in inboxes:
            try:
                inbox.put_nowait((kind, data))
            except queue.Full:  # that browser is far behind: it refreshes on the next event anyway
                pass

    def end_streams(self) -> None:
        """Ask every open stream to end now (the process is stopping; browsers reconnect elsewhere)."""
        self.send(END, "")

    def still_needed(self) -> bool:
        """False once the last stream closed: the thread then ends (under the lock, so none is missed)."""
        with self.lock:
            if self.inboxes:
                return True
            self.thread = None
            return False

    def run(self) -> None:
        """Forward published changes and engine changes until no stream is open."""
        client = connect_redis(self.redis_url)
        pubsub = None
        self.engine = None  # changes while no stream was open are not news to anyone
        next_check = 0.0
        while self.still_needed():
            try:
                if pubsub is None:
                    pubsub = client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(channel_of(client))
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + ENGINE_CHECK_SECONDS
                    self.check_engine(engine_snapshot(client))
                message = pubsub.get_message(timeout=max(0.0, next_check - time.monotonic()))
                if message and message.get("type") == "message":
                    self.send("change", _text(message["data"]))
            except RedisError as error:
                if pubsub is not None or self.engine is None or self.engine["redis"]:  # once per outage
                    log.warning("Live stream: Redis unavailable (%s); retrying every second", error)
                pubsub = _close(pubsub)
                self.check_engine({"redis": False, "scheduler": False, "workers": None})
                time.sleep(ENGINE_CHECK_SECONDS)
        _close(pubsub)
        client.close()

    def check_engine(self, snapshot: dict[str, Any]) -> None:
        """Send an "engine" event when the engine's state differs from the last one seen."""
        previous, self.engine = self.engine, snapshot
        if previous is not None and previous != snapshot:
            self.send("engine", json.dumps(snapshot))


def engine_snapshot(client: Any) -> dict[str, Any]:
    """What the banner and the engine card depend on: Redis up, the scheduler alive, how many workers."""
    state = health.engine_state(client, now_epoch=time.time())
    return {"redis": True, "scheduler": state["scheduler"]["alive"], "workers": len(state["workers"])}


def _text(data: Any) -> str:
    return data.decode() if isinstance(data, bytes) else str(data)


def _close(pubsub: Any) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except RedisError:
            pass
    return None


class EventStream:
    """The body of one SSE response; closing it (the client went away) leaves the hub."""

    def __init__(self, hub: Hub, inbox: queue.Queue[tuple[str, str]]) -> None:
        self.hub = hub
        self.inbox = inbox

    def __iter__(self) -> Iterator[bytes]:
        yield f"retry: {RETRY_MILLISECONDS}\n: connected\n\n".encode()
        ends_at = time.monotonic() + STREAM_LIFETIME_SECONDS
        while time.monotonic() < ends_at:
            try:
                kind, data = self.inbox.get(timeout=HEARTBEAT_SECONDS)
            except queue.Empty:
                yield b": heartbeat\n\n"
                continue
            if kind == END:
                return
            yield f"event: {kind}\ndata: {data}\n\n".encode()

    def close(self) -> None:
        self.hub.unsubscribe(self.inbox)


_hubs: dict[str, Hub] = {}
_hubs_lock = threading.Lock()


def hub_for(redis_url: str) -> Hub:
    """This process's hub for `redis_url` (one per URL: tests run several apps in one process)."""
    with _hubs_lock:
        hub = _hubs.get(redis_url)
        if hub is None:
            hub = _hubs[redis_url] = Hub(redis_url)
        return hub


def end_all_streams() -> None:
    """End every open stream of this process: gunicorn's graceful stop then waits for none of them."""
    with _hubs_lock:
        hubs = list(_hubs.values())
    for hub in hubs:
        hub.end_streams()
