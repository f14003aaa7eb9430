"""The engine announces its writes to the admin's live stream: a run the worker claims and records publishes
change events naming the run and its task on the live channel (chime.live), after each commit. In process, real Redis."""
from __future__ import annotations

import json
from typing import Any

from chime.live import channel_of
from tests.engine.helpers import create, executions, in_seconds
from tests.engine.inprocess.engine import InProcessEngine


def published(listener: Any) -> list[dict[str, Any]]:
    messages = []
    while (message := listener.get_message(timeout=0.2)) is not None:
        if message["type"] == "message":
            messages.append(json.loads(message["data"]))
    return messages


def test_a_run_is_announced_with_its_task_when_claimed_and_when_recorded(
        engine: InProcessEngine, connection: Any) -> None:
    # a run longer than the publisher's coalescing window: its start and its end are two messages (a shorter
    # one's may go out as one, which the admin reads the same way)
    task_id = create(name="announced", job="sleep", args={"seconds": 0.4}, run_at=in_seconds(0), max_retries=0,
                     schedule_type="ONE_TIME", interval_seconds=None)
    listener = connection.pubsub()
    listener.subscribe(channel_of(connection))
    try:
        engine.run_next()
        [run] = executions(task_id)
        assert run.status == "SUCCESS"
        events = published(listener)
    finally:
        listener.close()
    runs = [event for event in events if "run" in event["kinds"]]
    assert len(runs) >= 2  # claimed (running), then recorded (success)
    assert all(event["task_ids"] == [task_id] for event in runs)
