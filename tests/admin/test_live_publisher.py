"""The process's live publisher (chime.live.PUBLISHER): what is committed within its coalescing window goes out as
one message on the live channel, off the committing thread; the last changes of a process that exits, and the
changes of a forked child, are published too. Real Redis."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

from chime import live
from chime.live import MAX_TASK_IDS, USERS, Publisher, channel_of
from tests.admin.conftest import add_task
from tests.admin.test_live_stream import next_message


def listening(redis_client: Any) -> Any:
    """A subscription to the live channel that has heard nothing yet (what earlier commits left is sent and
    dropped first)."""
    listener = redis_client.pubsub()
    listener.subscribe(channel_of(redis_client))
    live.PUBLISHER.flush()
    while listener.get_message(timeout=0.3) is not None:
        pass
    return listener


def test_tasks_committed_within_the_window_are_announced_in_one_message(app: Any, redis_client: Any,
                                                                         monkeypatch: Any) -> None:
    monkeypatch.setattr(live, "COALESCE_SECONDS", 2.0)  # wide, so three commits surely fall into one window
    listener = listening(redis_client)
    try:
        ids = [add_task(f"coalesced {i}").id for i in range(3)]
        assert next_message(listener) == {"kinds": ["task"], "task_ids": sorted(ids)}
        assert next_message(listener, timeout=0.5) is None
    finally:
        listener.close()


def test_a_row_without_a_task_does_not_count_towards_the_cap(app: Any, redis_client: Any) -> None:
    url = app.config["REDIS_URL"]
    listener = listening(redis_client)
    publisher = Publisher()
    try:
        publisher.add(url, {"notification": {None, *range(1, MAX_TASK_IDS + 1)}})
        publisher.add(url, {"notification": {MAX_TASK_IDS + 1}})
        publisher.flush()
        assert next_message(listener) == {"kinds": ["notification"], "task_ids": None}, "more than the cap: many"
    finally:
        listener.close()


def test_a_publisher_without_a_thread_publishes_in_the_committing_thread(app: Any, redis_client: Any,
                                                                          monkeypatch: Any) -> None:
    def no_thread(_self: Any) -> None:
        raise RuntimeError("can't create new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    listener = listening(redis_client)
    try:
        Publisher().add(app.config["REDIS_URL"], {"task": {44}})  # does not raise into the commit
        assert next_message(listener) == {"kinds": ["task"], "task_ids": [44]}
    finally:
        listener.close()


def test_a_flush_waits_for_the_batch_the_thread_is_sending(app: Any, monkeypatch: Any) -> None:
    sent: list[dict[str, Any]] = []

    def slow_publish(message: dict[str, Any], url: str | None = None) -> None:
        time.sleep(0.5)
        sent.append(message)

    live.PUBLISHER.flush()  # what an earlier test of this process committed goes out now, not into `sent`
    monkeypatch.setattr(live, "publish", slow_publish)
    publisher = Publisher()
    publisher.add(app.config["REDIS_URL"], {"task": {45}})
    time.sleep(live.COALESCE_SECONDS + 0.2)  # the thread has taken the batch and is sending it
    publisher.flush()  # what the exit hook calls
    assert sent == [{"kinds": ["task"], "task_ids": [45]}]


def test_a_merged_message_names_at_most_the_cap_of_tasks_but_every_user(app: Any, redis_client: Any) -> None:
    url = app.config["REDIS_URL"]
    listener = listening(redis_client)
    publisher = Publisher()
    try:
        publisher.add(url, {"task": set(range(1, MAX_TASK_IDS)), USERS: set(range(1, 31))})
        publisher.add(url, {"task": set(range(MAX_TASK_IDS, 2 * MAX_TASK_IDS)), "run": {7}})
        publisher.flush()
        assert next_message(listener) == {"kinds": ["run", "task"], "task_ids": None, "user_ids": list(range(1, 31))}
    finally:
        listener.close()


def test_a_process_that_exits_at_once_still_publishes_its_last_changes(app: Any, redis_client: Any) -> None:
    listener = listening(redis_client)
    code = ("from chime import live\n"
            f"live.PUBLISHER.add({app.config['REDIS_URL']!r}, {{'task': {{41}}}})\n")  # then exit, no sleep
    try:
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        assert next_message(listener) == {"kinds": ["task"], "task_ids": [41]}
    finally:
        listener.close()


def test_a_forked_child_publishes_from_its_own_thread(app: Any, redis_client: Any) -> None:
    url = app.config["REDIS_URL"]
    live.PUBLISHER.add(url, {"task": {1}})  # the parent has a publisher thread of its own
    listener = listening(redis_client)
    try:
        pid = os.fork()
        if pid == 0:  # the child: publish through the module's publisher, then leave without any cleanup
            try:
                live.PUBLISHER.add(url, {"task": {42}})
                time.sleep(1)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        assert next_message(listener) == {"kinds": ["task"], "task_ids": [42]}
    finally:
        listener.close()


def test_a_redis_that_cannot_be_reached_pauses_only_its_own_updates(app: Any, redis_client: Any) -> None:
    listener = listening(redis_client)
    try:
        live.publish({"kinds": ["task"], "task_ids": [1]}, "redis://127.0.0.1:9/0")  # nothing listens there
        live.publish({"kinds": ["task"], "task_ids": [43]}, app.config["REDIS_URL"])
        assert next_message(listener) == {"kinds": ["task"], "task_ids": [43]}
    finally:
        listener.close()
