"""The admin's live stream: Server-Sent Events fed from Redis pub/sub and from the engine's heartbeats.

One `Hub` per web process and Redis URL holds one Redis subscription (chime.live's channel) for
all of that process's open streams, and checks the engine every ENGINE_CHECK_SECONDS: the scheduler
going stale or coming back, the number of workers and Redis itself are not writes anyone publishes,
so the hub notices them and sends an "engine" event when they change. Each open stream is a bounded
queue the hub fans out to; the hub's thread runs only while a stream is open, outlives any one bad
pass (logged, tried again a second later) and is started again by the next stream if it ever ended.
At most LIVE_MAX_STREAMS streams per process (each holds one of gunicorn's threads): beyond it, 503.

A stream gives its slot back promptly: it wakes every WAKE_SECONDS and ends when its client hung up
(under gunicorn it peeks at the client's socket, environ["gunicorn.socket"]: a writer only learns of
a dead socket on its second write, a heartbeat or two later), when its user is disabled or signed out
(chime.live announces such a change, and the hub ends that user's streams at once; a stream also
re-checks its session every SESSION_CHECK_SECONDS), or after STREAM_LIFETIME_SECONDS.
"""
from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from redis.exceptions import RedisError

from chime.extensions import connect_redis
from chime.live import channel_of
from scheduler import health

log = logging.getLogger(__name__)

ENGINE_CHECK_SECONDS = 1.0      # how often the hub reads the heartbeats and the workers
HEARTBEAT_SECONDS = 15.0        # a comment line this often keeps proxies from closing an idle stream
WAKE_SECONDS = 1.0              # a stream looks this often whether its client hung up
SESSION_CHECK_SECONDS = 5.0     # and re-reads its user (active, session current) at most this often
RETRY_MILLISECONDS = 3000       # the browser's reconnect delay after a dropped stream
STREAM_LIFETIME_SECONDS = 300   # a stream ends after this; the browser reconnects (sessions re-checked)
BUSY_RETRY_AFTER_SECONDS = 30   # the Retry-After of a 503 when the process holds its maximum of streams
INBOX_SIZE = 100                # events a slow stream may fall behind by before the hub drops them
END = "end"                     # not an event: tells a stream to finish (see end_all_streams)


class Hub:
    """Fans out live events to the open streams of this process."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.inboxes: dict[queue.Queue[tuple[str, str]], int | None] = {}  # inbox -> the user whose stream it is
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.engine: dict[str, Any] | None = None
        self.failed_passes = 0  # passes that failed on anything but Redis (logged), since the process started
        self.engine_unreadable = False

    def subscribe(self, limit: int, user_id: int | None = None) -> queue.Queue[tuple[str, str]] | None:
        """A new stream's inbox (of `user_id`'s stream), or None when `limit` streams are open already."""
        with self.lock:
            if len(self.inboxes) >= limit:
                return None
            inbox: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=INBOX_SIZE)
            self.inboxes[inbox] = user_id
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name="chime-live-hub", daemon=True)
                self.thread.start()
            return inbox

    def unsubscribe(self, inbox: queue.Queue[tuple[str, str]]) -> None:
        with self.lock:
            self.inboxes.pop(inbox, None)

    def open_streams(self) -> int:
        with self.lock:
            return len(self.inboxes)

    def send(self, kind: str, data: str, user_ids: Iterable[int] | None = None) -> None:
        """Put an event in every open stream's inbox (only those of `user_ids` when given)."""
        users = None if user_ids is None else set(user_ids)
        with self.lock:
            inboxes = [inbox for inbox, user_id in self.inboxes.items() if users is None or user_id in users]
        for inbox in inboxes:
            try:
                inbox.put_nowait((kind, data))
            except queue.Full:  # that browser is far behind: it refreshes on the next event anyway
                if kind == END:  # an end must get through: make room for it
                    _drain(inbox)
                    inbox.put_nowait((kind, data))

    def forward(self, data: str) -> None:
        """One published change: end the streams of users it disabled or signed out, and pass any other
        change on to every stream (without the user ids: browsers need only the kinds and tasks)."""
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        if not isinstance(message, dict) or "user_ids" not in message:
            self.send("change", data)
            return
        self.send(END, "", user_ids=[i for i in message.pop("user_ids") or [] if isinstance(i, int)])
        if message.get("kinds"):
            self.send("change", json.dumps(message, separators=(",", ":")))

    def end_streams(self) -> None:
        """Ask every open stream to end now (the process is stopping; browsers reconnect elsewhere)."""
        self.send(END, "")

    def still_needed(self) -> bool:
        """False once the last stream closed: the thread then ends (under the lock, so none is missed)."""
        with self.lock:
            if self.inboxes:
                return True
            if self.thread is threading.current_thread():
                self.thread = None
            return False

    def run(self) -> None:
        """Forward published changes and engine changes until no stream is open. Any error is logged
        and the pass tried again a second later (a Redis outage is also an engine event); should the
        thread end anyway, the next stream that subscribes starts another."""
        client = None
        pubsub = None
        self.engine = None  # changes while no stream was open are not news to anyone
        next_check = 0.0
        failing = False
        try:
            client = connect_redis(self.redis_url)
            while self.still_needed():
                try:
                    if pubsub is None:
                        pubsub = client.pubsub(ignore_subscribe_messages=True)
                        pubsub.subscribe(channel_of(client))
                    if time.monotonic() >= next_check:
                        next_check = time.monotonic() + ENGINE_CHECK_SECONDS
                        self.read_engine(client)
                    message = pubsub.get_message(timeout=max(0.0, next_check - time.monotonic()))
                    if message and message.get("type") == "message":
                        self.forward(_text(message["data"]))
                    failing = False
                except RedisError as error:
                    if pubsub is not None or self.engine is None or self.engine["redis"]:  # once per outage
                        log.warning("Live stream: Redis unavailable (%s); retrying every second", error)
                    pubsub = _close(pubsub)
                    self.check_engine({"redis": False, "scheduler": False, "workers": None})
                    time.sleep(ENGINE_CHECK_SECONDS)
                except Exception:  # noqa: BLE001 - nothing must end every stream's feed for good
                    if not failing:  # once per run of failures
                        log.exception("Live stream: the hub's pass failed; trying again every second")
                    failing = True
                    self.failed_passes += 1
                    time.sleep(ENGINE_CHECK_SECONDS)
        finally:
            with self.lock:
                if self.thread is threading.current_thread():
                    self.thread = None
            _close(pubsub)
            if client is not None:
                client.close()

    def read_engine(self, client: Any) -> None:
        """Read the engine's state and send it when it changed; a state that cannot be read for any reason
        but Redis (a corrupt heartbeat) is logged once while it lasts and counted, and the changes still flow."""
        try:
            snapshot = engine_snapshot(client)
        except RedisError:
            raise
        except Exception:  # noqa: BLE001 - a bad value must not stop the changes
            if not self.engine_unreadable:
                log.exception("Live stream: the engine's state cannot be read; the banner keeps its last state")
            self.engine_unreadable = True
            self.failed_passes += 1
            return
        self.engine_unreadable = False
        self.check_engine(snapshot)

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
        except Exception:  # noqa: BLE001 - closing a broken subscription: nothing left to do
            pass
    return None


def _drain(inbox: queue.Queue[tuple[str, str]]) -> None:
    try:
        while True:
            inbox.get_nowait()
    except queue.Empty:
        pass


def hung_up(client: Any) -> bool:
    """Whether the client at the other end of this socket closed the connection (a peek that reads end of
    file, or a reset): what a stream's next write would find out only a heartbeat or two later. False
    when it cannot tell (no socket, a TLS socket, which refuses peeking)."""
    if client is None:
        return False
    try:
        return client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False  # open, nothing sent: a browser sends nothing more on an event stream
    except ValueError:
        return False
    except OSError:
        return True  # reset, or the socket is closed


def always(_: Any = None) -> bool:
    return True


class EventStream:
    """The body of one SSE response; closing it (the client went away) leaves the hub.

    `client_socket`: the connection to peek at (gunicorn's environ["gunicorn.socket"]; None: the stream
    ends only by a write failing, its lifetime or an END). `session_valid`: read at most every
    SESSION_CHECK_SECONDS -- False ends the stream (its user was disabled or signed out)."""

    def __init__(self, hub: Hub, inbox: queue.Queue[tuple[str, str]], client_socket: Any = None,
                 session_valid: Callable[[], bool] = always) -> None:
        self.hub = hub
        self.inbox = inbox
        self.client_socket = client_socket
        self.session_valid = session_valid

    def __iter__(self) -> Iterator[bytes]:
        yield f"retry: {RETRY_MILLISECONDS}\n: connected\n\n".encode()
        now = time.monotonic()
        ends_at, beat_at, check_at = now + STREAM_LIFETIME_SECONDS, now + HEARTBEAT_SECONDS, now + SESSION_CHECK_SECONDS
        while now < ends_at:
            try:
                kind, data = self.inbox.get(timeout=max(0.0, min(WAKE_SECONDS, beat_at - now, ends_at - now)))
            except queue.Empty:
                kind, data = "", ""
            now = time.monotonic()
            if kind == END or hung_up(self.client_socket):
                return
            if now >= check_at:
                if not self.session_valid():
                    return
                check_at = now + SESSION_CHECK_SECONDS
            if kind:
                yield f"event: {kind}\ndata: {data}\n\n".encode()
            elif now >= beat_at:
                yield b": heartbeat\n\n"
            if now >= beat_at or kind:
                beat_at = now + HEARTBEAT_SECONDS

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
