"""The migrations build exactly the schema the models describe, on SQLite and Postgres, and ids are never reused."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from tests.conftest import test_config as config_for
from tests.engine.helpers import create
from tests.services import PostgresSchema, missing_service, postgres_url
from chime import services
from webapp import create_app
from chime.config import normalise_database_url
from chime.extensions import db
from chime.unit_of_work import unit_of_work


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A database with no tables at all (a schema of its own on Postgres)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        return
    url = postgres_url()
    if url is None:
        missing_service("Postgres is not reachable (set TEST_DATABASE_URL)")
    schema = PostgresSchema(url)
    schema.create()
    try:
        yield schema.url
    finally:
        schema.drop()


@pytest.fixture
def migrated_app(empty_database_url: str, redis_url: str) -> Iterator[Any]:
    app = create_app(config_for(normalise_database_url(empty_database_url), redis_url))
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def schema_differences() -> list[Any]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return compare_metadata(context, db.metadata)


def test_the_migrations_build_the_schema_the_models_describe(migrated_app: Any) -> None:
    assert schema_differences() == []


def test_the_migrations_go_down_and_up_again(migrated_app: Any) -> None:
    downgrade(revision="base")
    upgrade()

    assert schema_differences() == []


def test_a_deleted_tasks_id_is_never_given_to_a_new_task(migrated_app: Any) -> None:
    first = create(name="first")
    doomed = create(name="doomed")
    with unit_of_work():
        services.delete_task(services.get_task(doomed))

    newcomer = create(name="newcomer")

    assert newcomer > doomed > first
