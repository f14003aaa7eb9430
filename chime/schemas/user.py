"""What the API reads and shows of users and their API tokens (a password or a token's hash is never shown)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from chime.enums import Role
from chime.errors import ValidationError
from chime.schemas.common import Instant, Sent
from chime.validation import MAX_ID

MIN_PASSWORD_LENGTH_CHARS = 8
MAX_PASSWORD_LENGTH_CHARS = 1000
MAX_USERNAME_LENGTH_CHARS = 100  # the users.username column
MAX_TOKEN_NAME_LENGTH_CHARS = 100  # the api_tokens.name column
USERNAME_PATTERN = r"^[^\s\x00-\x1f\x7f]+$"  # one word: no spaces or control characters
TOKEN_NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
ROLE_CHOICES = ", ".join(role.value for role in Role)

PASSWORD_TEXT = f"At least {MIN_PASSWORD_LENGTH_CHARS} characters; stored hashed, never shown"
ROLE_TEXT = ("viewer reads; operator also runs, retries, cancels, pauses, enables and disables; "
             "admin also edits tasks, users and tokens")
# A role in any case ("Admin" is admin).
RoleName = Annotated[Role, BeforeValidator(lambda value: value.lower() if isinstance(value, str) else value)]


class Received(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserInput(Received):
    """A new user."""

    username: str = Field(min_length=1, max_length=MAX_USERNAME_LENGTH_CHARS, pattern=USERNAME_PATTERN,
                          description="The name to sign in with (one word)")
    password: str = Field(min_length=MIN_PASSWORD_LENGTH_CHARS, max_length=MAX_PASSWORD_LENGTH_CHARS,
                          description=PASSWORD_TEXT)
    role: RoleName = Field(Role.VIEWER, description=ROLE_TEXT)


class UserPatch(Received):
    """What an admin changes of a user: any of role, active (enable or disable) and password (a reset)."""

    role: RoleName | None = Field(None, description=ROLE_TEXT)
    active: StrictBool | None = Field(None, description="false disables the user (signing in and their tokens are "
                                                  "refused, their sessions end); true enables them again")
    password: str | None = Field(None, min_length=MIN_PASSWORD_LENGTH_CHARS, max_length=MAX_PASSWORD_LENGTH_CHARS,
                                 description=PASSWORD_TEXT)


class TokenInput(Received):
    """A new API token: its label, and (admins only) the user it belongs to."""

    name: str = Field(max_length=MAX_TOKEN_NAME_LENGTH_CHARS, pattern=TOKEN_NAME_PATTERN,
                      description="A label to recognise the token by")
    user_id: int | None = Field(None, ge=1, le=MAX_ID, description="Its owner (admins only; default: the caller)")


class UserRead(Sent):
    id: int = Field(ge=1)
    username: str
    role: Role
    active: bool = Field(description="A disabled user cannot sign in and their tokens are refused")
    created_at: Instant
    last_login_at: Instant | None = Field(description="When they last signed in to the admin (null: never)")


class TokenRead(Sent):
    """An API token as listed: never the token itself or its hash."""

    id: int = Field(ge=1)
    name: str
    user_id: int | None = Field(ge=1, description="Its owner, whose role it carries")
    created_at: Instant
    last_used_at: Instant | None = Field(description="Updated at most once a minute")


class TokenCreated(TokenRead):
    token: str = Field(description="The token itself: shown this once, stored only as a hash")


# --------------------------------------------------------------------------- use


def validated(model: type[Received], payload: Any) -> Received:
    """`payload` read as `model`, or a ValidationError naming every bad field."""
    if not isinstance(payload, Mapping):
        raise ValidationError({"body": "must be a JSON object"})
    try:
        return model.model_validate(dict(payload))
    except pydantic.ValidationError as error:
        raise ValidationError(field_errors(error)) from None


def field_errors(error: pydantic.ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in error.errors(include_url=False):
        name = str(item["loc"][0]) if item["loc"] else "body"
        fields.setdefault(name[:100], reason(name, item))
    return fields


def reason(name: str, item: Mapping[str, Any]) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "is required"
    if name == "password":
        return (f"must be text of {MIN_PASSWORD_LENGTH_CHARS} to {MAX_PASSWORD_LENGTH_CHARS} characters")
    if name == "role":
        return f"must be one of {ROLE_CHOICES}"
    if name == "username":
        return f"must be one word (no spaces) of at most {MAX_USERNAME_LENGTH_CHARS} characters"
    if name == "name":
        return f"must be text of 1 to {MAX_TOKEN_NAME_LENGTH_CHARS} characters, not only spaces"
    if name == "active":
        return "must be true or false"
    if name == "user_id":
        return "must be a user id (a positive integer)"
    return str(item["msg"])
