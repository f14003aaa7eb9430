"""What every resource schema shares: an instant as the API writes it, the base of the models the
API sends, and one page of a paginated list."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema, create_model

from chime.config import MAX_PAGE_LIMIT
from chime.errors import ValidationError
from chime.timeutil import isoformat
from chime.validation import read_iso_datetime, text_error

# An aware instant, written as ISO 8601 with a +00:00 offset (pydantic's own JSON form writes "Z").
Instant = Annotated[datetime, PlainSerializer(isoformat, return_type=str, when_used="json"),
                    WithJsonSchema({"type": "string", "format": "date-time"})]
# Text a row may hold as NULL; the API sends "" for it.
Text = Annotated[str, BeforeValidator(lambda value: "" if value is None else value)]

PAGE_LINK = ("Link to the {} page, or null on the {}: CHIME_PUBLIC_URL + path when that is set, "
             "else the path alone (never built from the Host header)")


def stripped(value: Any) -> Any:
    """A before-validator: text without its surrounding whitespace (anything else as it is)."""
    return value.strip() if isinstance(value, str) else value


def storable(value: str) -> str:
    """An after-validator: text both databases can store (no NUL, no lone surrogate)."""
    reason = text_error(value)
    if reason:
        raise ValueError(reason)
    return value


def aware_instant(value: Any) -> Any:
    """ISO-8601 text (or a datetime) with a UTC offset; a wall-clock time without one is refused."""
    if value is None:
        return None
    instant = value if isinstance(value, datetime) else read_iso_datetime(value)
    if instant.tzinfo is None:
        raise ValueError("must include a UTC offset, such as 2030-01-31T09:00:00+01:00 or ...Z")
    try:
        instant.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is out of range: in UTC it falls outside the years 1 to 9999") from None
    return instant


# An instant a client sends: ISO 8601 with a UTC offset, which must fall within the years UTC can hold.
AwareInstant = Annotated[Instant, BeforeValidator(aware_instant)]


class Sent(BaseModel):
    """A document the API sends: read from attributes (a row) or a dict, every field always present."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")

    @classmethod
    def dump(cls, source: Any) -> dict[str, Any]:
        """The JSON-ready dict the API sends for `source` (a row, an object or a dict)."""
        return cls.model_validate(source).model_dump(mode="json")

    @classmethod
    def of(cls, **fields: Any) -> dict[str, Any]:
        """The JSON-ready dict the API sends for these fields."""
        return cls.dump(fields)


def page_of(item: type[BaseModel], name: str) -> type[Sent]:
    """The model of one page of `item`s, as webapp.api.common.paginate builds it."""
    link = Annotated[str | None, Field(json_schema_extra={"format": "uri-reference"})]
    return create_model(
        name,
        __base__=Sent,
        count=(int, Field(ge=0, description="Number of items matching the filters, over all pages; a lower bound "
                                             "when count_exact is false")),
        count_exact=(bool, Field(True, description="False when more items matched than the list counts (the execution "
                                             "log and notifications stop counting at 10,000): count is then at "
                                             "least that many, and next says whether another page follows")),
        next=(link, Field(description=PAGE_LINK.format("next", "last"))),
        previous=(link, Field(description=PAGE_LINK.format("previous", "first"))),
        results=(list[item], Field(max_length=MAX_PAGE_LIMIT)),  # type: ignore[valid-type]
    )


def field_errors(error: pydantic.ValidationError, prefix: str = "") -> dict[str, str]:
    """{field: reason} for pydantic's errors; a secret's value is never quoted back."""
    fields: dict[str, str] = {}
    for item in error.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "") or "body"
        kind = item["type"]
        if kind == "extra_forbidden":
            reason = "unknown field"
        elif kind == "missing":
            reason = "is required"
        else:
            reason = str(item["msg"]).removeprefix("Value error, ")
        fields.setdefault(name[:100], reason)
    return fields


def read_body(model: type[BaseModel], payload: Any,
              errors: Callable[[pydantic.ValidationError], dict[str, str]] = field_errors) -> Any:
    """`payload` validated as `model`, or ValidationError naming each bad field (by default dotted: "config.url";
    `errors` words them otherwise)."""
    if not isinstance(payload, dict):
        raise ValidationError({"body": "must be a JSON object"})
    try:
        return model.model_validate(payload)
    except pydantic.ValidationError as error:
        raise ValidationError(errors(error)) from None
