"""Routes about the system itself: jobs, cron preview, health (liveness, readiness, the whole service), OpenAPI."""
from __future__ import annotations

from typing import Any

from flask import jsonify, request

import jobs.registry as registry
from chime.schemas.cron import DEFAULT_PREVIEW_COUNT, DEFAULT_TIMEZONE, CronPreview
from chime.schemas.health import Liveness
from chime.schemas.job import JobRead
from chime.triggers import (
    CRON,
    MAX_PREVIEW_COUNT,
    Schedule,
    ScheduleError,
    describe_cron,
    fire_times,
    parse_aware_instant,
    validate_cron,
    validate_timezone,
)
from webapp import readiness
from chime.enums import Role
from webapp.api.blueprint import bp
from webapp.auth import allow
from webapp.api.common import query_args
from webapp.api.openapi import openapi_document
from chime.errors import ValidationError
from chime.timeutil import utcnow


@bp.get("/jobs/")
@allow(Role.VIEWER)
def list_jobs() -> Any:
    return jsonify([JobRead.dump(spec) for spec in registry.all_jobs()])


@bp.get("/cron/preview/")
@allow(Role.VIEWER)
def cron_preview() -> Any:
    """The next fire times of an expression after `from` (an instant with an offset; default now)."""
    expr = request.args.get("cron", "")
    zone = request.args.get("timezone") or DEFAULT_TIMEZONE
    count = query_args().integer("count", DEFAULT_PREVIEW_COUNT, 1, MAX_PREVIEW_COUNT)
    errors: dict[str, str] = {}
    from_at = utcnow()
    if request.args.get("from", "").strip():
        try:
            from_at = parse_aware_instant(request.args["from"])
        except ScheduleError as error:
            errors["from"] = str(error)
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
    return jsonify(CronPreview.of(next_runs=fire_times(schedule, from_at, count), description=describe_cron(expr)))


@bp.get("/health/live/")
def health_live() -> Any:
    """Liveness: this web process answers. Nothing else is checked."""
    return _health_response(Liveness.of(status="ok"), 200)


@bp.get("/health/ready/")
def health_ready() -> Any:
    """Readiness of this web instance: its database and Redis answer (for a load balancer)."""
    return _health_response(*readiness.readiness())


@bp.get("/health/")
def health() -> Any:
    """The whole service: readiness, a dispatching scheduler and a registered worker (for a monitor)."""
    return _health_response(*readiness.service_health())


def _health_response(document: dict[str, Any], status: int) -> Any:
    """A health answer is about this instant: no cache may keep it."""
    return jsonify(document), status, {"Cache-Control": "no-store"}


@bp.get("/openapi.json")
@allow(Role.VIEWER)
def openapi() -> Any:
    return jsonify(openapi_document())
