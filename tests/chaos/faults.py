"""Random faults, one every few seconds, each written down with its time so a loss can be explained."""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tests.chaos.cluster import Api, Cluster
from tests.chaos.grid import Change, State, Timeline, utc

PAUSE_CHOICES_SECONDS = (15, 25)
BUSY_WAIT_SECONDS = 5
READ_TASK_SECONDS = 180
FAULT_WEIGHTS = {"kill_worker": 2, "kill_scheduler": 2, "pause_worker": 1, "restart_redis": 1, "flushall": 1,
                 "edit": 2, "toggle": 2}
CRON_CHOICES = ("* * * * *", "*/2 * * * *")
UNDOS = ("restart", "FLUSHALL failed")


class Once:
    """Run an action at most once, whoever calls first; a second caller waits until it is done."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action
        self.lock = threading.Lock()
        self.done = False

    def __call__(self) -> None:
        with self.lock:
            if not self.done:
                self.done = True
                self.action()


@dataclass
class Event:
    start: datetime
    end: datetime
    kind: str
    detail: str

    def describe(self) -> str:
        span = f"{self.start.isoformat()}" + (f" .. {self.end.isoformat()}" if self.end > self.start else "")
        return f"{span} {self.kind}: {self.detail}"


def now() -> datetime:
    return utc(time.time())


class Chaos:
    """Injects faults at random (a seeded Random) and undoes them later (restart, SIGCONT, enable)."""

    def __init__(self, cluster: Cluster, api: Api, seed: int, timelines: list[Timeline]) -> None:
        """Two random streams from the seed: the plan (which fault when, for how long, on which task) is
        the same on every replay; the processes picked depend on which are busy at that moment."""
        self.cluster = cluster
        self.api = api
        self.rng = random.Random(f"{seed}-faults")
        self.targets = random.Random(f"{seed}-targets")
        self.timelines = timelines
        self.events: list[Event] = []
        self.disabled: set[int] = set()
        self.injected = 0
        self.lock = threading.Lock()
        self.api_errors: list[str] = []
        self.later: list[tuple[threading.Timer, Once]] = []

    def note(self, start: datetime, kind: str, detail: str, end: datetime | None = None) -> None:
        with self.lock:
            self.events.append(Event(start, end or start, kind, detail))
            if kind not in UNDOS and not detail.endswith(": enabled"):
                self.injected += 1

    def run(self, seconds: float, gap_seconds: tuple[float, float]) -> None:
        """Inject faults for `seconds` (each fault method adds to `injected` when it found a target)."""
        deadline = time.monotonic() + seconds
        next_at = time.monotonic() + self.rng.uniform(*gap_seconds)
        while time.monotonic() < deadline:
            if time.monotonic() >= next_at:
                kind = self.rng.choices(list(FAULT_WEIGHTS), weights=list(FAULT_WEIGHTS.values()))[0]
                getattr(self, kind)()
                next_at = time.monotonic() + self.rng.uniform(*gap_seconds)
            time.sleep(0.1)

    def undo_all(self) -> None:
        """Stop injecting: resume, restart and re-enable everything now (or wait for what is under way)."""
        for timer, once in self.later:
            timer.cancel()
            once()
        self.later.clear()

    def undo_in(self, seconds: float, action: Callable[[], None]) -> None:
        """Undo a fault on its own timer thread: a SIGCONT is never late because an API call blocks."""
        once = Once(action)
        timer = threading.Timer(seconds, once)
        timer.daemon = True
        self.later.append((timer, once))
        timer.start()

    # -- the faults -------------------------------------------------------------------------------
    def pick_busy_worker(self) -> tuple[str | None, str]:
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while time.monotonic() < deadline:
            busy = self.cluster.busy_workers()
            if busy:
                return self.targets.choice(busy), "busy"
            time.sleep(0.05)
        idle = self.cluster.running("worker")
        return (self.targets.choice(idle), "idle: none was busy") if idle else (None, "")

    def kill_worker(self) -> None:
        slot, why = self.pick_busy_worker()
        if slot is None:
            return
        name = self.cluster.slots[slot]
        self.cluster.kill(slot)
        self.note(now(), "kill -9 worker", f"{name} ({why})")
        self.undo_in(self.rng.uniform(0.5, 3), lambda: self.restart(slot))

    def kill_scheduler(self) -> None:
        slot = self.cluster.active_scheduler()
        why = "active"
        if slot is None:
            candidates = self.cluster.running("scheduler")
            if not candidates:
                return
            slot, why = self.targets.choice(candidates), "active one unknown"
        name = self.cluster.slots[slot]
        self.cluster.kill(slot)
        self.note(now(), "kill -9 scheduler", f"{name} ({why})")
        self.undo_in(self.rng.uniform(1, 4), lambda: self.restart(slot))

    def restart(self, slot: str) -> None:
        name = self.cluster.restart(slot)
        self.note(now(), "restart", name)

    def pause_worker(self) -> None:
        slot, why = self.pick_busy_worker()
        if slot is None:
            return
        seconds = self.rng.choice(PAUSE_CHOICES_SECONDS)
        started = now()
        self.cluster.pause(slot)
        name = self.cluster.slots[slot]

        def resume() -> None:
            if slot in self.cluster.paused:
                self.cluster.resume(slot)
                self.note(started, "SIGSTOP worker", f"{name} ({why}) for {seconds} s, then SIGCONT", end=now())

        self.undo_in(seconds, resume)

    def restart_redis(self) -> None:
        started = now()
        self.cluster.server.stop()
        time.sleep(self.rng.uniform(0.5, 4))
        self.cluster.server.start()
        self.note(started, "redis restarted empty", f"port {self.cluster.server.port}", end=now())

    def flushall(self) -> None:
        try:
            with self.cluster.redis as client:
                client.flushall()
            self.note(now(), "FLUSHALL", "")
        except Exception as error:  # noqa: BLE001 - Redis may be restarting
            self.note(now(), "FLUSHALL failed", repr(error))

    def edit(self) -> None:
        periodic = [t for t in self.timelines if t.schedule_type != "ONE_TIME" and t.task_id not in self.disabled]
        if not periodic:
            return
        timeline = self.rng.choice(periodic)
        state = timeline.state
        if timeline.schedule_type == "INTERVAL":
            choices = [s for s in range(2, 8) if s != state.interval_seconds]
            body, what = {"interval_seconds": self.rng.choice(choices)}, "interval"
        else:
            body, what = {"cron": next(c for c in CRON_CHOICES if c != state.cron)}, "cron"
        self.change(timeline, "PATCH", f"/api/tasks/{timeline.task_id}/", body, f"{what} -> {list(body.values())[0]}")

    def toggle(self) -> None:
        enabled = [t for t in self.timelines if t.task_id not in self.disabled]
        if not enabled:
            return
        timeline = self.rng.choice(enabled)
        self.disabled.add(timeline.task_id)
        self.change(timeline, "POST", f"/api/tasks/{timeline.task_id}/toggle/", None, "disabled")

        def enable() -> None:
            self.change(timeline, "POST", f"/api/tasks/{timeline.task_id}/toggle/", None, "enabled")
            self.disabled.discard(timeline.task_id)

        self.undo_in(self.rng.uniform(2, 8), enable)

    def change(self, timeline: Timeline, method: str, path: str, body: dict | None, what: str) -> None:
        """Change a task through the API; note the window and the state the API reports afterwards."""
        before = now()
        status, answer = self.api.call(method, path, body)
        if status != 200:
            what += f" (answered {status}: {answer})"
            self.api_errors.append(f"{before.isoformat()} {method} {path} answered {status}: {answer}")
            answer = self.read_task(timeline.task_id)
        after = now()
        state = State(bool(answer["enabled"]), answer.get("interval_seconds"), answer.get("cron"))
        timeline.changes.append(Change(before, after, state, what))
        self.note(before, "task change", f"task {timeline.task_id} ({timeline.name}): {what}", end=after)


    def read_task(self, task_id: int) -> dict:
        """The task as the API shows it, polled while the API cannot answer."""
        deadline = time.monotonic() + READ_TASK_SECONDS
        while True:
            status, answer = self.api.call("GET", f"/api/tasks/{task_id}/")
            if status != 200:
                self.api_errors.append(f"{now().isoformat()} GET /api/tasks/{task_id}/ answered {status}: {answer}")
            if status == 200 or time.monotonic() > deadline:
                assert status == 200, answer
                return answer
            time.sleep(0.5)


def near(events: list[Event], at: datetime, before_seconds: float = 40, after_seconds: float = 20) -> list[Event]:
    low, high = at - timedelta(seconds=before_seconds), at + timedelta(seconds=after_seconds)
    return [e for e in events if e.end >= low and e.start <= high]
