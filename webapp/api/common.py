"""Request parsing shared by the API modules: bodies, pagination, filters."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import request, url_for
from sqlalchemy import Select, func, select
from werkzeug.exceptions import UnsupportedMediaType

from webapp.config import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT
from webapp.errors import ValidationError
from webapp.extensions import db
from webapp.validation import parse_instant


def json_body() -> Any:
    """Return the parsed JSON body; 415 when it is not JSON, 400 when it does not parse."""
    if not request.is_json:
        raise UnsupportedMediaType("The request body must be JSON (Content-Type: application/json)")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the json module's answer to a body nested thousands of levels deep
        raise ValidationError({"body": "is nested too deeply"}) from None
    if body is None:
        raise ValidationError({"body": "is not valid JSON"})
    return body


def int_arg(name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    """Read an integer query argument within bounds, or raise ValidationError."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: "must be an integer"}) from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValidationError({name: f"must be {bound}"})
    return value


def bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValidationError({name: "must be true or false"})


def choice_arg(name: str, options: tuple[str, ...]) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.upper() not in options:
        raise ValidationError({name: "must be one of " + ", ".join(options)})
    return raw.upper()


def instant_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_instant(raw)
    except ValueError as error:
        raise ValidationError({name: str(error)}) from None


def paginate(query: Select, to_dict: Callable[[Any], dict]) -> dict[str, Any]:
    """Run a query as one page: {"count", "next", "previous", "results"}."""
    limit = int_arg("limit", DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT)
    offset = int_arg("offset", 0, 0, 10**12)
    count = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.scalars(query.limit(limit).offset(offset)).all()
    return {
        "count": count,
        "next": _page_url(limit, offset + limit) if offset + limit < count else None,
        "previous": _page_url(limit, max(offset - limit, 0)) if offset > 0 else None,
        "results": [to_dict(row) for row in rows],
    }


def _page_url(limit: int, offset: int) -> str:
    args = {k: v for k, v in request.args.items() if k not in ("limit", "offset")}
    return url_for(request.endpoint, **(request.view_args or {}), **args, limit=limit, offset=offset, _external=True)
