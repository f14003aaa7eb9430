"""The JSON API blueprint: HTTP glue only; the work is in webapp.services."""
from __future__ import annotations

from flask import Blueprint

from webapp.auth import require_api_token

bp = Blueprint("api", __name__, url_prefix="/api")
PUBLIC_ENDPOINTS = frozenset({"api.health"})


@bp.before_request
def check_token() -> None:
    from flask import request

    if request.endpoint not in PUBLIC_ENDPOINTS:
        require_api_token()


from webapp.api import logs, meta, notifications, stats, tasks  # noqa: E402,F401  (routes)
