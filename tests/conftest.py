"""Fixtures: a private Redis, the app on SQLite or Postgres, and API clients."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy import text

from tests.services import PostgresSchema, RedisServer, missing_service, postgres_url
from webapp import create_app
from chime.config import normalise_database_url
from chime.extensions import db

pytest_plugins = ["tests.engine_fixtures"]

API_TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
_postgres_schema_ready: set[str] = set()


# Process-heavy tests (marked `engine` or `browser`: real workers, schedulers, browsers) are spread over the
# xdist workers like any other (pytest.ini: `-n 4`, four tests at once even on 2 cores: these tests mostly wait
# for their processes, and the machine sat idle with two). Each starts its own redis-server, processes and
# ports, so two such tests share nothing but the CPU; their waits are generous enough for that and none
# asserts a timing.


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_lib.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[PostgresSchema | None]:
    """A private schema for this test session (None when Postgres is unreachable)."""
    url = postgres_url()
    if url is None:
        yield None
        return
    schema = PostgresSchema(url)
    schema.create()
    yield schema
    schema.drop()


def database_url_for(kind: str, tmp_path: Any, schema: PostgresSchema | None) -> str:
    """Return a SQLite file URL, or the private Postgres schema's URL."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'chime.sqlite3'}"
    if schema is None:
        missing_service("Postgres is not reachable (set TEST_DATABASE_URL)")
    return schema.url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any, postgres_schema: PostgresSchema | None) -> str:
    return database_url_for(request.param, tmp_path, postgres_schema)


def test_config(database_url: str, redis_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        "REDIS_URL": redis_url,
        "API_TOKENS": [API_TOKEN],
        "WTF_CSRF_ENABLED": True,
        **extra,
    }


def reset_database(url: str) -> None:
    """Create the schema (once per Postgres database) and empty every table."""
    if url.startswith("sqlite"):
        db.create_all()
        return
    if url not in _postgres_schema_ready:
        db.drop_all()
        db.create_all()
        _postgres_schema_ready.add(url)
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()


@contextmanager
def app_on(database_url: str, redis_url: str, **extra: Any) -> Iterator[Any]:
    """The app on an emptied database, inside its app context; connections closed afterwards."""
    app = create_app(test_config(database_url, redis_url, **extra))
    with app.app_context():
        reset_database(database_url)
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(database_url: str, redis_url: str) -> Iterator[Any]:
    with app_on(database_url, redis_url) as app:
        yield app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


class ApiClient:
    """The Flask test client with the bearer token and JSON bodies filled in."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        headers = {**AUTH, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, json=json, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self._call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self._call("POST", path, json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self._call("PUT", path, json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self._call("PATCH", path, json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self._call("DELETE", path, **kwargs)


@pytest.fixture
def api(client: Any) -> ApiClient:
    return ApiClient(client)


@pytest.fixture
def redis_client(app: Any) -> redis_lib.Redis:
    return app.extensions["redis"]
