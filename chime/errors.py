"""Errors a client can be told about: each has an HTTP status and a code (rendered by webapp.errors)."""
from __future__ import annotations

from typing import Any


class ChimeError(Exception):
    """Base class: an error a client can be told about."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.fields is not None:
            body["fields"] = self.fields
        return body


class ValidationError(ChimeError):
    """The input is not a valid task (or query): ``fields`` says why, per field."""

    status = 400
    code = "validation_error"

    def __init__(self, fields: dict[str, str], message: str | None = None) -> None:
        summary = "; ".join(f"{name}: {reason}" for name, reason in sorted(fields.items()))
        super().__init__(message or f"Invalid input: {summary}", fields)


class NotFoundError(ChimeError, LookupError):
    """No object with that id."""

    status = 404
    code = "not_found"

    def __init__(self, kind: str, object_id: object) -> None:
        super().__init__(f"No {kind} with id {object_id!r} was found")


class ConflictError(ChimeError):
    """The request conflicts with the current state (duplicate name, dependents)."""

    status = 409
    code = "conflict"


class UnauthorizedError(ChimeError):
    status = 401
    code = "unauthorized"


class ForbiddenError(ChimeError):
    """The caller is known but their role does not allow this."""

    status = 403
    code = "forbidden"


class UnavailableError(ChimeError):
    """A backing service (Redis, the database) is down."""

    status = 503
    code = "service_unavailable"
