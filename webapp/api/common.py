"""Request parsing shared by the API modules: bodies, pagination, filters."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import current_app, request, url_for
from sqlalchemy import Select
from werkzeug.exceptions import UnsupportedMediaType

from chime.config import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT
from chime.errors import ValidationError
from webapp import queries
from webapp.arguments import parse_instant_arg, parse_integer, parse_text

MAX_QUERY_INTEGER = 2**63 - 1  # the largest value a BIGINT (and SQLite's INTEGER) holds
MAX_OFFSET = 10**12


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


def int_arg(name: str, default: int | None, low: int, high: int = MAX_QUERY_INTEGER) -> int | None:
    """Read an integer query argument within bounds (ASCII digits only), or raise ValidationError."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    return parse_integer(raw, name, low, high)


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


def text_arg(name: str, max_length: int) -> str:
    """Read free text (a search): NUL refused, surrounding space dropped, at most `max_length` characters."""
    return parse_text(request.args.get(name, ""), name, max_length)


def instant_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    return parse_instant_arg(raw, name)


def paginate(query: Select, to_dict: Callable[[Any], dict]) -> dict[str, Any]:
    """Run a query as the page the request's limit/offset ask for: {"count", "next", "previous", "results"}."""
    limit = int_arg("limit", DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT)
    offset = int_arg("offset", 0, 0, MAX_OFFSET)
    page = queries.paginate(query, offset=offset, limit=limit)
    return {
        "count": page.total,
        "next": _page_url(limit, offset + limit) if page.has_next else None,
        "previous": _page_url(limit, max(offset - limit, 0)) if page.has_prev else None,
        "results": [to_dict(row) for row in page.items],
    }


def _page_url(limit: int, offset: int) -> str:
    args = {k: v for k, v in request.args.items() if k not in ("limit", "offset")}
    return external_url(url_for(request.endpoint, **(request.view_args or {}), **args, limit=limit, offset=offset))


def external_url(path: str) -> str:
    """A link for a response body: CHIME_PUBLIC_URL + path, or the path alone when it is unset.

    Never built from the request's Host header (url_for(_external=True), request.host_url):
    anyone can send `Host: evil.example`, and a cache or a client would follow it there.
    """
    base = current_app.config.get("PUBLIC_URL") or ""
    return base + path if base else path
