"""The handlers that render errors (chime.errors) and HTTP exceptions.

JSON under /api/ (``{"error", "message", "fields"?}``); HTML pages elsewhere.
"""
from __future__ import annotations

import logging
from typing import Any, Literal

from flask import Flask, Response, jsonify, render_template, request
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from werkzeug.exceptions import HTTPException

from chime.errors import ChimeError
from chime.extensions import db

log = logging.getLogger(__name__)


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}
OTHER_CODE = "error"  # a status HTTP_CODES does not name


def chime_error_codes(kind: type[ChimeError] = ChimeError) -> list[str]:
    """The codes of ChimeError and of every subclass of it."""
    return [kind.code, *(code for sub in kind.__subclasses__() for code in chime_error_codes(sub))]


ERROR_CODES = tuple(dict.fromkeys([*HTTP_CODES.values(), *chime_error_codes(), OTHER_CODE]))


class ErrorBody(BaseModel):
    """The one body every API error has."""

    error: Literal[ERROR_CODES] = Field(description="Machine-readable error code")  # type: ignore[valid-type]
    message: str = Field(description="Human-readable explanation")
    fields: dict[str, str] | SkipJsonSchema[None] = Field(
        None, description="Why each named field (or query argument) is invalid")


def wants_json() -> bool:
    """Answer JSON for API paths and for clients that ask for it."""
    if request.path.startswith("/api/") or request.path == "/api":
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, message: str, code: str | None = None, fields: dict | None = None) -> Response:
    """Build the one error body every API error uses."""
    body = ErrorBody(error=code or HTTP_CODES.get(status, OTHER_CODE), message=message, fields=fields)
    response = jsonify(body.model_dump(exclude_none=True))
    response.status_code = status
    return response


def _render(status: int, message: str, code: str, fields: dict | None = None) -> Any:
    if wants_json():
        return error_response(status, message, code, fields)
    return render_template("error.html", status=status, message=message), status


def handle_chime_error(error: ChimeError) -> Any:
    return _render(error.status, error.message, error.code, error.fields)


def handle_http_exception(error: HTTPException) -> Any:
    status = error.code or 500
    response = _render(status, error.description or error.name, HTTP_CODES.get(status, OTHER_CODE))
    if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        if isinstance(response, Response):
            response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def handle_unexpected(error: Exception) -> Any:
    db.session.rollback()
    log.exception("Unhandled error on %s %s", request.method, request.path)
    return _render(500, "Internal server error; the details are in the server log", "internal_error")


def handle_redis_down(error: Exception) -> Any:
    db.session.rollback()
    log.warning("Redis unavailable on %s %s: %s", request.method, request.path, error)
    return _render(503, "Redis is unavailable; try again shortly", "service_unavailable")


def handle_database_unavailable(error: Exception) -> Any:
    """The database could not serve the request (unreachable, a deadlock, a lock timeout): nothing was
    changed (the transaction is rolled back), so the client may simply try again."""
    db.session.rollback()
    log.warning("Database unavailable on %s %s: %s", request.method, request.path, str(error).splitlines()[0])
    response = _render(503, "The database could not complete the request; nothing was changed, try again shortly",
                       "service_unavailable")
    if isinstance(response, Response):
        response.headers["Retry-After"] = "1"
    return response


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on the app, so unknown URLs are covered too."""
    import redis.exceptions
    import sqlalchemy.exc

    app.register_error_handler(ChimeError, handle_chime_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(redis.exceptions.ConnectionError, handle_redis_down)
    app.register_error_handler(redis.exceptions.TimeoutError, handle_redis_down)
    app.register_error_handler(sqlalchemy.exc.OperationalError, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
