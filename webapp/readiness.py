"""What the health routes report: each component's state and why the service is not ready.

- liveness (/api/health/live/): the web process answers; nothing is checked.
- readiness (/api/health/ready/): this web instance can serve: its database and Redis answer.
- the whole service (/api/health/): readiness, and a scheduler dispatches and a worker is registered,
  read from Redis with the same code as the dashboard (scheduler.health.engine_state).

States are short codes, never connection details: "ok", "error: <exception class>" for the
database and Redis, "ok" / "missing" / "stale" / "unknown" for the scheduler and "ok" / "none" /
"unknown" for the workers ("unknown": Redis is unreachable, which is the reason given).
"""
from __future__ import annotations

import time
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from scheduler import health
from chime.extensions import db, get_redis
from chime.schemas.common import Sent
from chime.schemas.health import Health, Readiness

UNKNOWN = "unknown"
ENGINE_UNKNOWN = {"scheduler": UNKNOWN, "workers": UNKNOWN, "scheduler_heartbeat_age_seconds": None,
                  "worker_count": None}


def check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except SQLAlchemyError as error:
        db.session.rollback()
        return f"error: {type(error).__name__}"


def check_redis() -> str:
    try:
        get_redis().ping()
        return "ok"
    except RedisError as error:
        return f"error: {type(error).__name__}"


def check_redis_and_engine(now_epoch: float) -> dict[str, Any]:
    """Redis, the scheduler and the workers, from one read of the engine's state in Redis."""
    try:
        state = health.engine_state(get_redis(), now_epoch=now_epoch)
    except RedisError as error:
        return {"redis": f"error: {type(error).__name__}", **ENGINE_UNKNOWN}
    return {"redis": "ok", **describe_engine(state, now_epoch=now_epoch)}


def describe_engine(state: dict[str, Any], *, now_epoch: float) -> dict[str, Any]:
    """The health document's engine part from `health.engine_state`."""
    last_active = state["scheduler"]["last_active_heartbeat"]
    return {
        "scheduler": state["scheduler"]["status"],
        "workers": "ok" if state["workers"] else "none",
        "scheduler_heartbeat_age_seconds": None if last_active is None else round(max(now_epoch - last_active, 0), 1),
        "worker_count": len(state["workers"]),
    }


def verdict(checks: dict[str, Any], schema: type[Sent]) -> tuple[dict[str, Any], int]:
    """The health document (as `schema` says) and its status code: 503 naming every component that is not "ok".

    A component that could not be checked ("unknown") is not a reason of its own: Redis, which
    it is read from, is.
    """
    reasons = [name for name in ("database", "redis", "scheduler", "workers")
               if name in checks and checks[name] not in ("ok", UNKNOWN)]
    document = schema.of(status="unavailable" if reasons else "ok", reasons=reasons, **checks)
    return document, 503 if reasons else 200


def readiness() -> tuple[dict[str, Any], int]:
    """Can this web instance serve? Its database and Redis answer."""
    return verdict({"database": check_database(), "redis": check_redis()}, Readiness)


def service_health() -> tuple[dict[str, Any], int]:
    """Is the whole service working? Readiness, plus a dispatching scheduler and a registered worker."""
    return verdict({"database": check_database(), **check_redis_and_engine(time.time())}, Health)
