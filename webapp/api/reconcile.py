"""Route to run one reconcile pass on demand."""
from __future__ import annotations

from typing import Any

from flask import jsonify

from scheduler.reconcile import reconcile
from webapp.api.blueprint import bp
from chime.errors import ConflictError
from chime.extensions import get_redis


@bp.post("/reconcile/")
def run_reconcile() -> Any:
    report = reconcile(get_redis())
    if report.get("skipped"):
        raise ConflictError("Another reconcile pass is running; nothing was done")
    return jsonify(report)
