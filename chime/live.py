"""Change events for the admin's live stream: one Redis PUBLISH after each commit that changed a run,
a notification or a task.

Every process (web, worker, scheduler, CLI) commits through the one SQLAlchemy session class, so two
session events cover every writer: `after_flush` notes which kinds of rows changed, `after_commit`
publishes one small JSON message ``{"kinds": [...], "task_ids": [...]}`` on `channel_of` the app's Redis (with
``"user_ids"`` when it disabled a user or ended their sessions: the web process then ends their open streams). A
rolled-back transaction publishes nothing. Publishing is best effort: it never raises into the commit, never waits
long (a dedicated client without retries and with a short timeout) and, after a failure, stays quiet
for PAUSE_AFTER_FAILURE_SECONDS instead of trying (and failing) again on every commit. The web
process turns these messages into Server-Sent Events (webapp.live).
"""
from __future__ import annotations

import json
import logging
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

_clients: dict[str, Any] = {}
_paused_until = 0.0
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
    """After a commit that changed runs, notifications or tasks: one PUBLISH (errors logged, ignored)."""
    changed = session.info.pop(CHANGED, None)
    if changed:
        publish(change_event(changed))


def change_event(changed: dict[str, set[int | None]]) -> dict[str, Any]:
    """The message: which kinds changed and, when few, for which tasks (the task page filters on them); the
    users whose streams must end, when any (kinds may then be empty)."""
    kinds = {kind: ids for kind, ids in changed.items() if kind != USERS}
    task_ids = sorted({task_id for ids in kinds.values() for task_id in ids if task_id is not None})
    message: dict[str, Any] = {"kinds": sorted(kinds), "task_ids": task_ids if len(task_ids) <= MAX_TASK_IDS else None}
    if changed.get(USERS):
        message["user_ids"] = sorted(user_id for user_id in changed[USERS] if user_id is not None)
    return message


def publish(message: dict[str, Any]) -> None:
    """PUBLISH `message` on this app's Redis (`channel_of`); quietly skipped without an app or Redis."""
    global _paused_until
    url = _redis_url()
    if url is None or time.monotonic() < _paused_until:
        return
    try:
        client = _client(url)
        client.publish(channel_of(client), json.dumps(message, separators=(",", ":")))
    except Exception as error:  # a live update is a courtesy: it never fails or slows the writer
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
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
