"""Flask extensions, created unbound and initialised in create_app."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
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
csrf = CSRFProtect()


REDIS_SOCKET_TIMEOUT_SECONDS = 5.0


def connect_redis(url: str) -> "Redis":
    """Open a Redis client for a redis:// URL or a redis+sentinel://host:port/service URL."""
    from redis import Redis
    from redis.sentinel import Sentinel

    if url.startswith("redis+sentinel://"):
        rest = url[len("redis+sentinel://"):]
        hosts, _, service = rest.partition("/")
        nodes = [(h.split(":")[0], int(h.split(":")[1]) if ":" in h else 26379) for h in hosts.split(",")]
        sentinel = Sentinel(nodes, socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS)
        return sentinel.master_for(service or "mymaster", socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS)
    return Redis.from_url(
        url,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


def init_redis(app: "Flask") -> None:
    """Keep one Redis client for the app in app.extensions."""
    if "redis" not in app.extensions:
        app.extensions["redis"] = connect_redis(app.config["REDIS_URL"])


def get_redis() -> "Redis":
    """Return the current app's Redis client."""
    from flask import current_app

    return current_app.extensions["redis"]
