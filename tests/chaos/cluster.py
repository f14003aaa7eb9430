"""The system under test as the chaos test drives it: web, workers and schedulers from the Procfile,
a private redis-server, and the JSON API over HTTP."""
from __future__ import annotations

import functools
import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import redis as redis_lib

from scheduler import health
from chime import occurrence as occ
from tests.engine_fixtures import Engine
from tests.services import RedisServer

API_TOKEN = "chaos-token"
API_RETRY_SECONDS = 60
STARTED = re.compile(r"Scheduler (\S+) started")
T = TypeVar("T")


class Api:
    """The web process's JSON API, retried while it cannot answer (a slow start, a locked database)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        deadline = time.monotonic() + API_RETRY_SECONDS
        while True:
            try:
                return self._once(method, path, body)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _once(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=40) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, text


def locked(method: Callable[..., T]) -> Callable[..., T]:
    """Serialise a Cluster method: faults and their undos (on timer threads) change the slots."""

    @functools.wraps(method)
    def wrapper(self: Cluster, *args: Any, **kwargs: Any) -> T:
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper


class Cluster:
    """Named slots (w1, w2, w3, s1, s2, web) whose processes can be killed, paused and restarted."""

    def __init__(self, engine: Engine, server: RedisServer) -> None:
        self.engine = engine
        self.server = server
        self.slots: dict[str, str] = {}  # slot -> the Engine process name running it now
        self.kinds: dict[str, str] = {}
        self.paused: set[str] = set()
        self.starts = 0
        self.lock = threading.RLock()

    @property
    def redis(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.server.url, socket_timeout=5, socket_connect_timeout=5)

    @locked
    def start(self, slot: str, kind: str) -> str:
        self.starts += 1
        name = f"{slot}-{self.starts}"
        self.engine.start(kind, name=name)
        self.slots[slot], self.kinds[slot] = name, kind
        return name

    def restart(self, slot: str) -> str:
        return self.start(slot, self.kinds[slot])

    @locked
    def kill(self, slot: str) -> None:
        name = self.slots.pop(slot)
        self.paused.discard(slot)
        self.engine.kill(name)

    @locked
    def pause(self, slot: str) -> None:
        os.killpg(self.engine.pid(self.slots[slot]), signal.SIGSTOP)
        self.paused.add(slot)

    @locked
    def resume(self, slot: str) -> None:
        if slot in self.paused and slot in self.slots:
            os.killpg(self.engine.pid(self.slots[slot]), signal.SIGCONT)
        self.paused.discard(slot)

    @locked
    def running(self, kind: str) -> list[str]:
        return sorted(s for s, k in self.kinds.items() if k == kind and s in self.slots and s not in self.paused)

    def busy_workers(self) -> list[str]:
        """Worker slots running a job now: the job's liveness key holds the worker's pid."""
        try:
            with self.redis as client:
                keys = list(client.scan_iter(match=occ.ALIVE_KEY.format(execution_id="*"), count=1000))
                pids = {int(v) for v in client.mget(keys) if v} if keys else set()
        except redis_lib.RedisError:
            return []
        with self.lock:
            return [s for s in self.running("worker") if self.engine.pid(self.slots[s]) in pids]

    def active_scheduler(self) -> str | None:
        """The scheduler slot holding the lock, from its heartbeat and the name it logged at start."""
        try:
            with self.redis as client:
                beats = [json.loads(v) for v in client.hgetall(health.SCHEDULER_HEARTBEAT_KEY).values()]
        except redis_lib.RedisError:
            return None
        active = {b["name"] for b in beats if b.get("active") and time.time() - b["at"] < 3}
        with self.lock:
            logs = {slot: self.engine.log_dir / f"{self.slots[slot]}.log" for slot in self.running("scheduler")}
        for slot, path in logs.items():
            log = path.read_text(errors="replace")
            if any(name in active for name in STARTED.findall(log)):
                return slot
        return None

    @locked
    def stop(self, slot: str) -> None:
        """Stop a process as an operator would (SIGTERM, then SIGKILL after a while)."""
        self.resume(slot)
        self.engine.stop(self.slots.pop(slot))

    def queued(self) -> int:
        from chime.models import QUEUE_NAMES

        with self.redis as client:
            return sum(client.llen(f"rq:queue:{name}") for name in QUEUE_NAMES)

    def workers_registered(self) -> int:
        from rq import Worker

        with self.redis as client:
            return len(Worker.all(connection=client))

    def schedulers_beating(self) -> int:
        with self.redis as client:
            return len(health.scheduler_state(client, now_epoch=time.time())["instances"])
