"""Routes about the system itself: jobs, cron preview, health, the OpenAPI document."""
from __future__ import annotations

from typing import Any

from flask import jsonify, request
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

import jobs.registry as registry
from scheduler.triggers import CRON, Schedule, ScheduleError, describe_cron, fire_times, validate_cron, validate_timezone
from webapp.api import bp
from webapp.api.common import int_arg
from webapp.api.openapi import openapi_document
from webapp.errors import ValidationError
from webapp.extensions import db, get_redis
from webapp.timeutil import isoformat, utcnow

MAX_PREVIEW_COUNT = 50


@bp.get("/jobs/")
def list_jobs() -> Any:
    return jsonify([spec.to_dict() for spec in registry.all_jobs()])


@bp.get("/cron/preview/")
def cron_preview() -> Any:
    expr = request.args.get("cron", "")
    zone = request.args.get("timezone", "UTC") or "UTC"
    count = int_arg("count", 5, 1, MAX_PREVIEW_COUNT)
    errors: dict[str, str] = {}
    try:
        validate_cron(expr)
    except ScheduleError as error:
        errors["cron"] = str(error)
    try:
        validate_timezone(zone)
    except ScheduleError as error:
        errors["timezone"] = str(error)
    if errors:
        raise ValidationError(errors)
    schedule = Schedule(schedule_type=CRON, cron=" ".join(expr.split()), timezone=zone)
    return jsonify({
        "next_runs": [isoformat(t) for t in fire_times(schedule, utcnow(), count)],
        "description": describe_cron(expr),
    })


@bp.get("/health/")
def health() -> Any:
    checks = {"database": _check_database(), "redis": _check_redis()}
    healthy = all(value == "ok" for value in checks.values())
    return jsonify({"status": "ok" if healthy else "unavailable", **checks}), 200 if healthy else 503


def _check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except SQLAlchemyError as error:
        db.session.rollback()
        return f"error: {type(error).__name__}"


def _check_redis() -> str:
    try:
        get_redis().ping()
        return "ok"
    except RedisError as error:
        return f"error: {type(error).__name__}"


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())
