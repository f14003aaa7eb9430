"""The admin blueprint object, apart from its routes so route modules import it without a cycle."""
from __future__ import annotations

from flask import Blueprint

from webapp.admin import helpers
from webapp.auth import require_admin_role

bp = Blueprint("admin", __name__, template_folder="../templates")
helpers.register(bp)
bp.before_request(require_admin_role)
