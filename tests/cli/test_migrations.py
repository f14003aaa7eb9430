"""The migrations build exactly the schema the models describe, on SQLite and Postgres, and ids are never reused."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import inspect as sa_inspect
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from tests.conftest import test_config as config_for
from tests.engine.helpers import create
from tests.services import PostgresSchema, missing_service, postgres_url
from chime import services
from webapp import create_app, queries
from chime.config import normalise_database_url
from chime.database import TRIGRAM_INDEXES, include_in_autogenerate
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
        context = MigrationContext.configure(connection, opts={"compare_type": False,
                                                               "include_object": include_in_autogenerate})
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


def query_plan(query: Any) -> str:
    """The database's plan for `query`, one string; on Postgres with sequential scans priced out, so the
    plan shows whether an index can answer the query at all (a table of a few rows is read whole anyway)."""
    sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}"))
        return "\n".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


def test_the_admin_task_list_takes_its_order_from_the_name_index_without_sorting(migrated_app: Any) -> None:
    page = queries.task_query(queries.TaskFilters(), queries.TASKS_BY_NAME).limit(25).offset(2500)

    plan = query_plan(page)

    assert "ix_tasks_lower_name_id" in plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


@pytest.mark.parametrize("empty_database_url", ["postgres"], indirect=True)
def test_on_postgres_the_task_search_is_answered_from_the_trigram_indexes(migrated_app: Any) -> None:
    search = queries.task_query(queries.TaskFilters(search="billing"), queries.TASKS_BY_ID).order_by(None)

    plan = query_plan(search)

    assert "Bitmap Index Scan on ix_tasks_name_trgm" in plan and "Bitmap Index Scan on ix_tasks_job_trgm" in plan, plan


def test_the_trigram_indexes_go_with_a_downgrade(migrated_app: Any) -> None:
    downgrade(revision="c5e8a1f40b27")

    with db.engine.connect() as connection:
        names = {index["name"] for index in sa_inspect(connection).get_indexes("tasks")}
    assert not names & {"ix_tasks_lower_name_id", *TRIGRAM_INDEXES}
