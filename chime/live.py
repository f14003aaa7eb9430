"""Change events for the admin's live stream: one Redis PUBLISH after each commit that changed a run,
a notification or a task.

Every process (web, worker, scheduler, CLI) commits through the one SQLAlchemy session class, so two
session events cover every writer: `after_flush` notes which kinds of rows changed, `after_commit`
hands the change to the process's publisher thread, which sends one small JSON message
``{"kinds": [...], "task_ids": [...]}`` on `channel_of` the app's Redis (with ``"user_ids"`` when it disabled a user
or ended their sessions: the web process then ends their open streams). The thread merges what was committed within
COALESCE_SECONDS into one message, so a worker recording hundreds of runs a second sends a few PUBLISHes a second,
none of them on the run's own path; a process that exits sends what is left. A rolled-back transaction publishes
nothing. Publishing is best effort: it never raises into the commit, never waits long (a dedicated client without
retries and with a short timeout) and, after a failure, stays quiet for PAUSE_AFTER_FAILURE_SECONDS instead of
trying (and failing) again and again. The web process turns these messages into Server-Sent Events (webapp.live).
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from chime.redis_keys import live_channel

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 0.5
PAUSE_AFTER_FAILURE_SECONDS = 5.0
MAX_TASK_IDS = 20  # more changed tasks than this in one commit: the event says "many" (no ids)
CHANGED = "chime.live.changed"  # session.info: kind -> set of task ids (None: some row without one)
KINDS = {"Execution": "run", "Notification": "notification", "Task": "task"}
USERS = "users"  # session.info[CHANGED][USERS]: users disabled, deleted or signed out everywhere
USER_FIELDS = ("active", "session_generation")  # a change of these ends the user's open streams

COALESCE_SECONDS = 0.05  # changes committed within this long of the first go out as one message

_clients: dict[str, Any] = {}
_paused_until: dict[str, float] = {}  # Redis URL -> monotonic time before which no PUBLISH is tried
_lock = threading.Lock()


def install() -> None:
    """Listen to every session's flushes and commits (once per process)."""
    if not event.contains(Session, "after_flush", note_changes):
        event.listen(Session, "after_flush", note_changes)
        event.listen(Session, "after_commit", publish_changes)
        event.listen(Session, "after_rollback", forget_changes)


def note_changes(session: Session, _context: Any) -> None:
    """Remember the kinds of rows (and their tasks) this flush wrote, for the commit to announce."""
    changed = session.info.setdefault(CHANGED, {})
    for row in (*session.dirty, *session.deleted):
        if type(row).__name__ == "User" and (row in session.deleted or any(
                inspect(row).attrs[name].history.has_changes() for name in USER_FIELDS)):
            changed.setdefault(USERS, set()).add(row.id)
    for row in (*session.new, *session.dirty, *session.deleted):
        kind = KINDS.get(type(row).__name__)
        if kind is not None:
            task_id = row.id if kind == "task" else getattr(row, "task_id", None)
            changed.setdefault(kind, set()).add(task_id)


def note_written(session: Session, kind: str, task_id: int | None) -> None:
    """Note a write no flush shows (a DML statement, such as the executor's conditional UPDATE that records a
    run), so the commit announces it like any other: `kind` is one of KINDS' values."""
    session.info.setdefault(CHANGED, {}).setdefault(kind, set()).add(task_id)


def forget_changes(session: Session) -> None:
    session.info.pop(CHANGED, None)


def publish_changes(session: Session) -> None:
    """After a commit that changed runs, notifications or tasks: hand the change to the publisher thread."""
    changed = session.info.pop(CHANGED, None)
    if changed:
        url = _redis_url()
        if url is not None:
            PUBLISHER.add(url, changed)


class Publisher:
    """The process's publisher: merges the changes committed meanwhile (per Redis URL) and publishes them from
    one daemon thread, COALESCE_SECONDS after the first; `flush` sends what is pending at once."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A fresh, empty publisher (also in a forked child: the parent's thread and lock are not its own)."""
        self.lock = threading.Lock()
        self.sending = threading.Lock()  # held from taking a batch until it is sent: an exit flush waits for it
        self.wake = threading.Event()
        self.pending: dict[str, dict[str, set[int | None]]] = {}
        self.thread: threading.Thread | None = None

    def add(self, url: str, changed: dict[str, set[int | None]]) -> None:
        """Queue a commit's changes; never raises into the commit (which has happened)."""
        try:
            _client(url)  # made here (no connection yet): a flush at exit could no longer import what it needs
            with self.lock:
                merge(self.pending.setdefault(url, {}), changed)
                if self.thread is None or not self.thread.is_alive():
                    self.thread = threading.Thread(target=self.run, name="chime-live-publisher", daemon=True)
                    self.thread.start()
            self.wake.set()
        except Exception as error:  # no thread to be had (e.g. at interpreter shutdown): send it now
            log.debug("Live publisher thread unavailable (%s); publishing in the committing thread", error)
            self.flush()

    def run(self) -> None:
        while True:
            self.wake.wait()
            time.sleep(COALESCE_SECONDS)
            self.wake.clear()
            self.flush()

    def flush(self) -> None:
        """Send what is pending now (after a batch the thread is sending, which it waits for)."""
        with self.sending:
            with self.lock:
                batch, self.pending = self.pending, {}
            for url, changed in batch.items():
                publish(change_event(changed), url)


def merge(into: dict[str, set[int | None]], changed: dict[str, set[int | None]]) -> None:
    """Add a commit's changes to a pending message's; task ids past MAX_TASK_IDS (the message then says "many")
    need not be kept, the ids of users whose streams must end always are."""
    for kind, ids in changed.items():
        kept = into.setdefault(kind, set())
        if kind == USERS:
            kept.update(ids)
            continue
        room = MAX_TASK_IDS + 1 - (len(kept) - (None in kept))  # one past the cap is enough to say "many"
        kept.update([one_id for one_id in ids if one_id is not None and one_id not in kept][:max(room, 0)])
        if None in ids:
            kept.add(None)


PUBLISHER = Publisher()
atexit.register(PUBLISHER.flush)  # a CLI command's last commit still reaches open admin pages


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    _clients.clear()
    _paused_until.clear()
    PUBLISHER.reset()


os.register_at_fork(after_in_child=_after_fork_in_child)


def change_event(changed: dict[str, set[int | None]]) -> dict[str, Any]:
    """The message: which kinds changed and, when few, for which tasks (the task page filters on them); the
    users whose streams must end, when any (kinds may then be empty)."""
    kinds = {kind: ids for kind, ids in changed.items() if kind != USERS}
    task_ids = sorted({task_id for ids in kinds.values() for task_id in ids if task_id is not None})
    message: dict[str, Any] = {"kinds": sorted(kinds), "task_ids": task_ids if len(task_ids) <= MAX_TASK_IDS else None}
    if changed.get(USERS):
        message["user_ids"] = sorted(user_id for user_id in changed[USERS] if user_id is not None)
    return message


def publish(message: dict[str, Any], url: str | None = None) -> None:
    """PUBLISH `message` now on the Redis at `url` (default: this app's) on `channel_of` it; quietly skipped
    without an app or Redis."""
    url = url or _redis_url()
    if url is None or time.monotonic() < _paused_until.get(url, 0.0):
        return
    try:
        client = _client(url)
        client.publish(channel_of(client), json.dumps(message, separators=(",", ":")))
    except Exception as error:  # a live update is a courtesy: it never fails or slows the writer
        _paused_until[url] = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
        with _lock:
            _clients.pop(url, None)  # the next try connects afresh (a Redis that came back, maybe elsewhere)
        log.warning("Live update not published (%s); the admin catches up by polling", error)


def channel_of(client: Any) -> str:
    """The live channel of the database `client` uses (pub/sub is server-wide: two installs on one Redis
    server with different database numbers must not hear each other)."""
    return live_channel(int(client.connection_pool.connection_kwargs.get("db") or 0))


def _redis_url() -> str | None:
    from flask import current_app, has_app_context

    return current_app.config.get("REDIS_URL") if has_app_context() else None


def _client(url: str) -> Any:
    """One publishing client per Redis URL and process: short timeouts, no retries."""
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = _connect(url)
        return client


def _connect(url: str) -> Any:
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from chime.extensions import connect_redis
    from chime.redis_url import is_sentinel_url

    if is_sentinel_url(url):
        return connect_redis(url, PUBLISH_TIMEOUT_SECONDS)
    return Redis.from_url(url, socket_timeout=PUBLISH_TIMEOUT_SECONDS, socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS,
                          retry=Retry(NoBackoff(), 0))
