"""The JSON API blueprint object and its checks, apart from its routes so they import it without a cycle."""
from __future__ import annotations

from flask import Blueprint

from webapp.auth import require_api_token

bp = Blueprint("api", __name__, url_prefix="/api")
PUBLIC_ENDPOINTS = frozenset({"api.health", "api.health_ready", "api.health_live"})


@bp.before_request
def check_token() -> None:
    from flask import request

    if request.endpoint not in PUBLIC_ENDPOINTS:
        require_api_token()


@bp.before_request
def reject_impossible_ids() -> None:
    """Answer 404 for a path id no row can have, instead of letting the database overflow (a 500)."""
    from flask import request

    from chime.errors import NotFoundError
    from chime.validation import MAX_ID

    for name, value in (request.view_args or {}).items():
        if name.endswith("_id") and isinstance(value, int) and value > MAX_ID:
            raise NotFoundError(name.removesuffix("_id"), value)

