"""GET /metrics in the Prometheus text format (bearer token required, like the API)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from scheduler.metrics import EngineCollector
from chime.enums import Role
from webapp.auth import act_for_request, allow, check_role, require_api_token
from chime.extensions import get_redis

bp = Blueprint("monitoring", __name__)


@bp.get("/metrics")
@allow(Role.VIEWER)
def metrics() -> Any:
    actor = require_api_token()
    act_for_request(actor)
    check_role(actor, "monitoring.metrics")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(get_redis(), per_task=bool(current_app.config["METRICS_PER_TASK"])))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
