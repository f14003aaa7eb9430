"""Request parsing shared by the API modules: bodies, pagination, filters."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request, url_for
from sqlalchemy import Select
from werkzeug.exceptions import UnsupportedMediaType

from chime.config import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT
from chime.errors import ValidationError
from webapp import queries
from webapp.arguments import QueryArgs

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


def query_args() -> QueryArgs:
    """The request's query string, read strictly: a bad value is a 400 naming the argument."""
    return QueryArgs(request.args)


def paginate(query: Select, to_dict: Callable[[Any], dict]) -> dict[str, Any]:
    """Run a query as the page the request's limit/offset ask for: {"count", "count_exact", "next", "previous",
    "results"} (count_exact False: more than the query's count limit matched and count is a lower bound)."""
    args = query_args()
    limit = args.integer("limit", DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT)
    offset = args.integer("offset", 0, 0, MAX_OFFSET)
    page = queries.paginate(query, offset=offset, limit=limit)
    return {
        "count": page.total,
        "count_exact": page.total_exact,
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
