"""Route for /api/stats/."""
from __future__ import annotations

from typing import Any

from flask import jsonify

from chime.enums import Role
from webapp.api.blueprint import bp
from webapp.auth import allow
from webapp.stats import collect_stats


@bp.get("/stats/")
@allow(Role.VIEWER)
def stats() -> Any:
    return jsonify(collect_stats())
