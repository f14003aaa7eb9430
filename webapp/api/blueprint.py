"""The JSON API blueprint object and its checks, apart from its routes so they import it without a cycle."""
from __future__ import annotations

from flask import Blueprint

from webapp.auth import require_api_role

bp = Blueprint("api", __name__, url_prefix="/api")
PUBLIC_ENDPOINTS = frozenset({"api.health", "api.health_ready", "api.health_live"})


@bp.before_request
def check_token() -> None:
    from flask import request

    if request.endpoint not in PUBLIC_ENDPOINTS:
        require_api_role()

