"""The database and Redis extensions, created unbound and initialised in chime.app.configure."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

if TYPE_CHECKING:
    from flask import Flask
    from redis import Redis

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


REDIS_SOCKET_TIMEOUT_SECONDS = 5.0
REDIS_HEALTH_CHECK_SECONDS = 30


def connect_redis(url: str, timeout_seconds: float = REDIS_SOCKET_TIMEOUT_SECONDS) -> "Redis":
    """Open a Redis client for a plain redis:// URL or a redis+sentinel:// URL (see chime.redis_url).

    A Sentinel client asks the Sentinels for the master's address on each new connection, so after
    a failover the next command (redis-py retries a failed one) reaches the promoted replica.
    """
    from redis import Redis
    from redis.sentinel import Sentinel

    from chime.redis_url import is_sentinel_url, master_kwargs, parse_sentinel_url, sentinel_kwargs

    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs(target, timeout_seconds),
                            **master_kwargs(target, timeout_seconds))
        return sentinel.master_for(target.service, health_check_interval=REDIS_HEALTH_CHECK_SECONDS)
    return Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=REDIS_HEALTH_CHECK_SECONDS,
    )


def init_redis(app: "Flask") -> None:
    """Keep one Redis client for the app in app.extensions."""
    if "redis" not in app.extensions:
        app.extensions["redis"] = connect_redis(app.config["REDIS_URL"])


def get_redis() -> "Redis":
    """Return the current app's Redis client."""
    from flask import current_app

    return current_app.extensions["redis"]
