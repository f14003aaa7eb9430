"""Use-cases for users and their API tokens, shared by the API, the admin and the CLI.

Like chime.services they flush, never commit: the caller wraps them in ``with unit_of_work():``, and
every change adds its audit event (chime.audit.record) to that same transaction. The last active admin
cannot be demoted, disabled or deleted: the check counts the active admins in the transaction that
makes the change, with their rows locked (Postgres: SELECT ... FOR UPDATE; SQLite: the write lock
taken at BEGIN IMMEDIATE), so two admins demoting each other at once cannot both succeed.
"""
from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import Select, delete, func, select
from werkzeug.security import generate_password_hash

from chime import audit
from chime.enums import Role
from chime.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from chime.extensions import db
from chime.models import ApiToken, User
from chime.schemas.user import TokenInput, UserInput, UserPatch, validated

TOKEN_BYTES = 32
TOKEN_PREFIX = "chime_"
LAST_ADMIN = "{name} is the last active admin: make another user an admin first"


# --------------------------------------------------------------------------- secrets


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest stored for a (high-entropy) API token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """Return a fresh random API token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def revoke_sessions(user: User) -> None:
    """Make every cookie signed in as this user invalid (the caller commits)."""
    user.session_generation += 1


# --------------------------------------------------------------------------- users


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.username)))


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFoundError("user", user_id)
    return user


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def user_fields(user: User) -> dict[str, Any]:
    return {"username": user.username, "role": Role(user.role).value, "active": user.active}


def create_user(payload: Any) -> User:
    """Create a user from {username, password, role}; 409 when the name is taken."""
    data = validated(UserInput, payload)
    if find_user(data.username) is not None:
        raise ConflictError(f"A user named {data.username!r} already exists", {"username": "is taken"})
    user = User(username=data.username, password_hash=hash_password(data.password), role=data.role)
    db.session.add(user)
    db.session.flush()
    audit.record("create", "user", user.id, user.username, after=user_fields(user))
    return user


def update_user(user: User, payload: Any) -> User:
    """Apply {role?, active?, password?} to a user: each change audited on its own."""
    data = validated(UserPatch, payload)
    if data.role is not None and data.role != user.role:
        change_role(user, data.role)
    if data.active is not None and data.active != user.active:
        set_active(user, data.active)
    if data.password is not None:
        set_password(user, data.password)
    return user


def change_role(user: User, role: Role) -> User:
    before = Role(user.role)
    if before == role:
        return user
    if before == Role.ADMIN:
        keep_an_admin(user)
    user.role = role
    db.session.flush()
    audit.record("role_change", "user", user.id, user.username, before={"role": before.value},
                 after={"role": role.value})
    return user


def set_active(user: User, active: bool) -> User:
    """Enable or disable a user; disabling ends every session of the user (their tokens are refused)."""
    if user.active == active:
        return user
    if not active:
        keep_an_admin(user)
        revoke_sessions(user)
    user.active = active
    db.session.flush()
    audit.record("activate" if active else "deactivate", "user", user.id, user.username,
                 before={"active": not active}, after={"active": active})
    return user


def set_password(user: User, password: str) -> User:
    """Set a new password (validated like a new user's); every session of the user ends."""
    data = validated(UserPatch, {"password": password})
    user.password_hash = hash_password(str(data.password))
    revoke_sessions(user)
    db.session.flush()
    audit.record("password_change", "user", user.id, user.username)
    return user


def delete_user(user: User) -> None:
    """Delete a user and every token of theirs (their audit events keep their name)."""
    keep_an_admin(user)
    revoked = db.session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user.id))
    audit.record("delete", "user", user.id, user.username, before=user_fields(user),
                 details={"revoked_credentials": revoked or 0})
    db.session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    db.session.delete(user)
    db.session.flush()


def keep_an_admin(user: User) -> None:
    """Refuse (409) a change that would leave no active admin: `user` is one and the only one."""
    if Role(user.role) != Role.ADMIN or not user.active:
        return
    admins = db.session.scalars(
        select(User.id).where(User.role == Role.ADMIN, User.active.is_(True)).order_by(User.id).with_for_update()
    ).all()
    if all(admin_id == user.id for admin_id in admins):
        raise ConflictError(LAST_ADMIN.format(name=user.username))


def the_only_admin() -> User:
    """The one active admin (the CLI's default owner of a new token); a ValidationError otherwise."""
    admins = db.session.scalars(select(User).where(User.role == Role.ADMIN, User.active.is_(True))).all()
    if len(admins) != 1:
        found = "no active admin exists" if not admins else f"{len(admins)} active admins exist"
        raise ValidationError({"user": "is required"}, f"Say which user the token belongs to: {found}")
    return admins[0]


# --------------------------------------------------------------------------- tokens


def token_query(owner_id: int | None) -> Select[tuple[ApiToken]]:
    """The tokens of one user (None: every token), newest first."""
    query = select(ApiToken).order_by(ApiToken.id.desc())
    return query if owner_id is None else query.where(ApiToken.user_id == owner_id)


def list_tokens(owner_id: int | None) -> list[ApiToken]:
    return list(db.session.scalars(token_query(owner_id)))


def create_token(payload: Any, caller: audit.Actor) -> tuple[ApiToken, str]:
    """Create a token for the caller (or, for an admin, the user_id the payload names); return it and
    the token itself, which is shown this once and stored only as a hash."""
    data = validated(TokenInput, payload)
    owner_id = data.user_id if data.user_id is not None else caller.user_id
    if owner_id is None:
        raise ValidationError({"user_id": "is required"}, "This caller is no user: say whose token it is (user_id)")
    if owner_id != caller.user_id and not caller.role.includes(Role.ADMIN):
        raise ForbiddenError("Only an admin may create a token for another user")
    return create_token_for(get_user(owner_id), data.name)


def create_token_for(owner: User, name: str) -> tuple[ApiToken, str]:
    """Store the hash of a new token of `owner` named `name`; return the row and the token."""
    name = validated(TokenInput, {"name": name}).name  # type: ignore[attr-defined]
    token = new_token()
    row = ApiToken(name=name, token_hash=hash_token(token), user_id=owner.id)
    db.session.add(row)
    db.session.flush()
    audit.record("token_create", "token", row.id, row.name, details={"owner": owner.username})
    return row, token


def get_token(token_id: int, caller: audit.Actor) -> ApiToken:
    """A token the caller may manage: their own, or any one for an admin (404 otherwise: another
    user's token is not even confirmed to exist)."""
    row = db.session.get(ApiToken, token_id)
    if row is None or (row.user_id != caller.user_id and not caller.role.includes(Role.ADMIN)):
        raise NotFoundError("token", token_id)
    return row


def revoke_token(token_id: int, caller: audit.Actor) -> str:
    """Revoke (delete) a token the caller may manage; return its name."""
    row = get_token(token_id, caller)
    owner = row.user.username if row.user is not None else None
    audit.record("token_revoke", "token", row.id, row.name, details={"owner": owner})
    db.session.delete(row)
    db.session.flush()
    return row.name
