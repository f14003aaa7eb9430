"""Route for /api/stats/."""
from __future__ import annotations

from typing import Any

from flask import jsonify

from webapp.api.blueprint import bp
from webapp.stats import collect_stats


@bp.get("/stats/")
def stats() -> Any:
    return jsonify(collect_stats())
