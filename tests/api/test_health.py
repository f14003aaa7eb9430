"""Liveness, readiness and the whole service's health, on SQLite and Postgres with a real redis-server.

/api/health/live/ answers 200 whatever is down; /api/health/ready/ is 503 when this web instance's
database or Redis is unreachable; /api/health/ is 503 as well when no scheduler holds the lock and
beat within 15 s, or no RQ worker is registered. A 503 names every cause in `reasons`.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis as redis_lib
from rq import Worker

from scheduler import health
from tests.conftest import app_on
from tests.conftest import test_config as make_config
from tests.services import free_port
from webapp import create_app
from chime.extensions import db

HEALTH, READY, LIVE = "/api/health/", "/api/health/ready/", "/api/health/live/"
SECRET = "s3cret-pass-word"
STALE_AFTER_SECONDS = 15  # the threshold the README and the OpenAPI document state


@contextmanager
def registered_worker(connection: redis_lib.Redis, name: str = "worker-1") -> Iterator[None]:
    """An RQ worker registered in Redis, as `rq worker` registers itself on start."""
    worker = Worker(["default"], connection=connection, name=name)
    worker.register_birth()
    try:
        yield
    finally:
        worker.register_death()


def get(client: Any, path: str) -> tuple[int, dict[str, Any]]:
    response = client.get(path)
    assert response.headers["Cache-Control"] == "no-store"
    return response.status_code, response.get_json()


@pytest.fixture
def worker(redis_client: redis_lib.Redis) -> Iterator[None]:
    with registered_worker(redis_client):
        yield


def test_everything_up_is_200_ok_on_all_three_without_a_token(client: Any, redis_client: Any, worker: None) -> None:
    health.beat_scheduler(redis_client, "scheduler-1", True)
    status, body = get(client, HEALTH)
    assert status == 200
    assert body["status"] == "ok" and body["reasons"] == []
    assert (body["database"], body["redis"], body["scheduler"], body["workers"]) == ("ok", "ok", "ok", "ok")
    assert body["worker_count"] == 1 and 0 <= body["scheduler_heartbeat_age_seconds"] < STALE_AFTER_SECONDS
    assert get(client, READY) == (200, {"status": "ok", "reasons": [], "database": "ok", "redis": "ok"})
    assert get(client, LIVE) == (200, {"status": "ok"})


def test_no_scheduler_heartbeat_is_a_503_naming_the_scheduler_while_ready_stays_200(client: Any,
                                                                                    worker: None) -> None:
    status, body = get(client, HEALTH)
    assert status == 503
    assert body["status"] == "unavailable" and body["reasons"] == ["scheduler"]
    assert body["scheduler"] == "missing" and body["scheduler_heartbeat_age_seconds"] is None
    assert get(client, READY)[0] == 200
    assert get(client, LIVE)[0] == 200


def test_a_fresh_heartbeat_of_the_lock_holder_clears_the_scheduler_reason(client: Any, redis_client: Any,
                                                                          worker: None) -> None:
    assert get(client, HEALTH)[1]["reasons"] == ["scheduler"]
    health.beat_scheduler(redis_client, "scheduler-1", True)
    status, body = get(client, HEALTH)
    assert (status, body["reasons"], body["scheduler"]) == (200, [], "ok")


def test_a_standby_alone_is_no_dispatching_scheduler(client: Any, redis_client: Any, worker: None) -> None:
    health.beat_scheduler(redis_client, "standby", False)
    status, body = get(client, HEALTH)
    assert (status, body["reasons"], body["scheduler"]) == (503, ["scheduler"], "missing")


def test_a_lock_holder_silent_for_longer_than_the_threshold_is_stale(client: Any, redis_client: Any,
                                                                    worker: None) -> None:
    silent_since = time.time() - STALE_AFTER_SECONDS - 5
    health.beat_scheduler(redis_client, "crashed", True, now_epoch=silent_since)
    health.beat_scheduler(redis_client, "standby", False)  # a live standby does not dispatch
    status, body = get(client, HEALTH)
    assert (status, body["reasons"], body["scheduler"]) == (503, ["scheduler"], "stale")
    assert body["scheduler_heartbeat_age_seconds"] >= STALE_AFTER_SECONDS + 5


def test_no_worker_registered_is_a_503_naming_the_workers(client: Any, redis_client: Any) -> None:
    health.beat_scheduler(redis_client, "scheduler-1", True)
    status, body = get(client, HEALTH)
    assert (status, body["reasons"], body["workers"], body["worker_count"]) == (503, ["workers"], "none", 0)
    assert get(client, READY)[0] == 200
    with registered_worker(redis_client):
        assert get(client, HEALTH)[0] == 200


def test_nothing_running_names_both_scheduler_and_workers(client: Any) -> None:
    assert get(client, HEALTH)[1]["reasons"] == ["scheduler", "workers"]


def test_redis_unreachable_is_a_503_naming_redis_on_ready_and_health(database_url: str, redis_url: str) -> None:
    closed = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    with app_on(database_url, closed) as down:
        client = down.test_client()
        status, body = get(client, HEALTH)
        assert (status, body["reasons"], body["database"]) == (503, ["redis"], "ok")
        assert body["redis"].startswith("error: ")
        assert (body["scheduler"], body["workers"], body["worker_count"]) == ("unknown", "unknown", None)
        status, ready = get(client, READY)
        assert (status, ready["reasons"]) == (503, ["redis"])
        assert get(client, LIVE) == (200, {"status": "ok"})
        assert SECRET not in str(body) + str(ready)


def unreachable_database_url(kind: str, tmp_path: Any) -> str:
    """A SQLite file in a directory that does not exist, or Postgres (with a password) on a closed port."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'missing-directory' / 'chime.sqlite3'}"
    return f"postgresql://chime:{SECRET}@127.0.0.1:{free_port()}/test"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_database_unreachable_is_a_503_naming_the_database(kind: str, tmp_path: Any, redis_url: str) -> None:
    connection = redis_lib.Redis.from_url(redis_url)
    health.beat_scheduler(connection, "scheduler-1", True)
    down = create_app(make_config(unreachable_database_url(kind, tmp_path), redis_url))
    try:
        with registered_worker(connection):
            client = down.test_client()
            status, body = get(client, HEALTH)
            status_ready, ready = get(client, READY)
            live = get(client, LIVE)
    finally:
        with down.app_context():
            db.engine.dispose()
        connection.close()
    assert (status, body["reasons"], body["redis"], body["scheduler"], body["workers"]) == (
        503, ["database"], "ok", "ok", "ok")
    assert body["database"].startswith("error: ")
    assert (status_ready, ready["reasons"]) == (503, ["database"])
    assert live == (200, {"status": "ok"})
    assert SECRET not in str(body) + str(ready)


def test_the_redis_password_of_a_working_setup_never_shows(client: Any, redis_url: str, worker: None) -> None:
    password = redis_lib.Redis.from_url(redis_url).connection_pool.connection_kwargs["password"]
    assert password
    for path in (HEALTH, READY, LIVE):
        assert password not in client.get(path).get_data(as_text=True)


# --------------------------------------------------------------------------- the rule itself, on plain heartbeats


@pytest.mark.parametrize("beats,status", [
    ([], "missing"),
    ([{"name": "b", "active": False, "at": 1000.0}], "missing"),
    ([{"name": "a", "active": True, "at": 1000.0 - STALE_AFTER_SECONDS}], "ok"),
    ([{"name": "a", "active": True, "at": 1000.0 - STALE_AFTER_SECONDS - 0.1}], "stale"),
    ([{"name": "a", "active": True, "at": 900.0}, {"name": "b", "active": True, "at": 999.0}], "ok"),
], ids=["none", "standby-only", "holder-at-the-threshold", "holder-just-past-it", "taken-over"])
def test_heartbeat_state_follows_the_lock_holders_last_beat(beats: list[dict[str, Any]], status: str) -> None:
    state = health.heartbeat_state(beats, now_epoch=1000.0)
    assert (state["status"], state["alive"]) == (status, status == "ok")
