"""Who may call the API and use the admin: API tokens, users and passwords."""
from __future__ import annotations

import hmac
import logging
from datetime import datetime, timedelta
from typing import Any, Callable

from flask import current_app, g, redirect, request, session, url_for
from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.security import check_password_hash, generate_password_hash

from chime import audit
from chime.audit import Actor, acting_as
from chime.enums import Role, Source
from chime.errors import ForbiddenError, UnauthorizedError
from chime.extensions import db
from chime.models import ApiToken, User
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from chime.users import hash_password, hash_token, new_token, revoke_sessions  # noqa: F401  (used here and by callers)

log = logging.getLogger(__name__)
TOKEN_USE_NOTED_EVERY_SECONDS = 60  # last_used_at is written at most this often per token, not per request
ROLE_ATTRIBUTE = "chime_required_role"
ENV_TOKEN_NAME = "API_TOKENS (environment)"


def allow(role: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a view with the least role that may call it (checked by the blueprint before the view runs).

    A view without the mark needs ADMIN: a route someone forgot to mark fails closed.
    """

    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        setattr(view, ROLE_ATTRIBUTE, role)
        return view

    return mark


def required_role(view: Callable[..., Any] | None) -> Role:
    """The role a view asks for (ADMIN when it was not marked)."""
    return getattr(view, ROLE_ATTRIBUTE, Role.ADMIN)


def check_role(actor: Actor, endpoint: str | None) -> None:
    """Raise ForbiddenError unless `actor` has the role the endpoint's view asks for."""
    needed = required_role(current_app.view_functions.get(endpoint or ""))
    if not actor.role.includes(needed):
        raise ForbiddenError(f"This needs the {needed.value} role; {actor.name} is {actor.role.value}")


def current_actor() -> Actor | None:
    """Who makes this request, once the blueprint's checks resolved it."""
    return g.get("actor")


def act_for_request(actor: Actor) -> None:
    """Make `actor` the one this request's changes are recorded for (until the request ends)."""
    g.actor = actor
    g.actor_scope = acting_as(actor)
    g.actor_scope.__enter__()


def end_request_actor(_error: BaseException | None = None) -> None:
    scope = g.pop("actor_scope", None)
    if scope is not None:
        scope.__exit__(None, None, None)


def user_actor(user: User, source: Source, token: ApiToken | None = None) -> Actor:
    name = user.username if token is None else f"{user.username} (token {token.name})"
    return Actor(name=name, source=source, role=Role(user.role), user_id=user.id,
                 token_id=None if token is None else token.id, remote_addr=request.remote_addr)


def create_token(name: str, user: User | None = None) -> str:
    """Store the hash of a new token of `user` and return the token itself (shown once)."""
    token = new_token()
    db.session.add(ApiToken(name=name, token_hash=hash_token(token), user_id=None if user is None else user.id))
    db.session.commit()
    return token


def token_actor(token: str) -> Actor | None:
    """Who a bearer token speaks for: an API_TOKENS token is an admin; a stored token carries its
    user's role (a token of a disabled user is refused); a token from before tokens had owners is an admin."""
    digest = hash_token(token)
    env_digests = current_app.extensions.setdefault(
        "chime_env_token_digests", [hash_token(t) for t in current_app.config["API_TOKENS"]]
    )
    if any(hmac.compare_digest(digest, known) for known in env_digests):
        return Actor(name=ENV_TOKEN_NAME, source=Source.API, role=Role.ADMIN, remote_addr=request.remote_addr)
    stored = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if stored is None:
        return None
    if stored.user is not None and not stored.user.active:
        return None
    note_token_use(stored, utcnow())
    if stored.user is None:
        return Actor(name=f"token {stored.name}", source=Source.API, role=Role.ADMIN, token_id=stored.id,
                     remote_addr=request.remote_addr)
    return user_actor(stored.user, Source.API, stored)


def is_valid_token(token: str) -> bool:
    """Check a bearer token against API_TOKENS and the stored token hashes."""
    return token_actor(token) is not None


def note_token_use(stored: ApiToken, now: datetime) -> None:
    """Set the token's last_used_at to `now` unless it was set less than TOKEN_USE_NOTED_EVERY_SECONDS ago.

    One conditional UPDATE (so concurrent requests write it once), committed on its own; a database
    that refuses the write only loses the note, never the request.
    """
    noted_after = now - timedelta(seconds=TOKEN_USE_NOTED_EVERY_SECONDS)
    if stored.last_used_at is not None and stored.last_used_at > noted_after:
        return
    try:
        with unit_of_work():
            db.session.execute(update(ApiToken).where(
                ApiToken.id == stored.id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= noted_after),
            ).values(last_used_at=now))
    except SQLAlchemyError as error:
        log.warning("Could not note the use of API token %s: %s", stored.id, error)


def bearer_token() -> str | None:
    """Return the token of an `Authorization: Bearer ...` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_api_token() -> Actor:
    """Return who the request speaks for: the bearer token's user, or (for reads only) the session's.

    Raise UnauthorizedError when it carries neither.
    """
    token = bearer_token()
    actor = token_actor(token) if token is not None else None
    if actor is not None:
        return actor
    user = current_user()
    if token is None and user is not None and request.method in ("GET", "HEAD"):
        return user_actor(user, Source.ADMIN)  # the admin's own pages read the API with their session
    raise UnauthorizedError("A valid API token is required: send 'Authorization: Bearer <token>'")


def require_api_role() -> None:
    """The API's check before every view: a known caller (401 otherwise) whose role the view allows (403)."""
    actor = require_api_token()
    act_for_request(actor)
    check_role(actor, request.endpoint)


def create_user(username: str, password: str, role: Role = Role.ADMIN) -> User:
    """Create a user with a hashed password."""
    user = User(username=username, password_hash=hash_password(password), role=role)
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(username: str, password: str) -> User | None:
    """Return the user when the password matches, else None."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        check_password_hash(DUMMY_HASH, password)  # same work whether or not the user exists
        return None
    matches = check_password_hash(user.password_hash, password)
    return user if matches and user.active else None


DUMMY_HASH = generate_password_hash("not-a-real-password")


def ensure_first_admin(username: str, password: str | None) -> tuple[str, str] | None:
    """Create the first admin when no user exists; return (name, password) when one was made."""
    if db.session.scalar(select(User.id).limit(1)) is not None:
        return None
    if not password:
        return None
    user = create_user(username, password)
    with unit_of_work():
        audit.record("create", "user", user.id, user.username, after={"username": username, "role": Role.ADMIN.value},
                     details={"via": "first admin"})
    log.info("Created the first admin user %r", username)
    return username, password


def require_admin_role() -> Any:
    """The admin pages' check before every view: anonymous visitors go to the login form (public
    pages excepted); a signed-in user whose role the page does not allow gets 403."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, "public", False):
        return None
    user = current_user()
    if user is None:
        return redirect(url_for("admin.login", next=request.full_path))
    actor = user_actor(user, Source.ADMIN)
    act_for_request(actor)
    check_role(actor, request.endpoint)
    return None


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an admin page anyone may open (the login form)."""
    view.__dict__["public"] = True
    return view


def current_user() -> User | None:
    """The signed-in user of this request (checked once per request by load_session_user)."""
    return g.get("user")


def load_session_user() -> None:
    """Accept the session's user only if it still exists, is active and the session is current.

    Runs before every request, so a revoked cookie is refused everywhere: admin pages, the
    API's session reads and /metrics. A refused session is emptied (the browser's cookie too).
    """
    g.user = None
    user_id = session.get("user_id")
    if user_id is None:
        return
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not user.active or session.get("generation") != user.session_generation:
        session.clear()
        return
    g.user = user


def login_user(user: User) -> None:
    session.clear()
    session["user_id"] = user.id
    session["username"] = user.username
    session["generation"] = user.session_generation
    session["logged_in_at"] = utcnow().isoformat()
    session.permanent = True
    g.user = user
    user.last_login_at = utcnow()  # one write per sign-in, shown in the users list
    db.session.commit()


def logout_user() -> None:
    """End the session here and on the server: a copy of the cookie is refused afterwards."""
    user = current_user()
    if user is not None:
        revoke_sessions(user)
        db.session.commit()
    session.clear()
    g.user = None


def set_password(user: User, password: str) -> None:
    """Change a password; every session of the user ends."""
    user.password_hash = hash_password(password)
    revoke_sessions(user)
    db.session.commit()


def set_active(user: User, active: bool) -> None:
    """Enable or disable a user; disabling ends every session of the user."""
    user.active = active
    if not active:
        revoke_sessions(user)
    db.session.commit()
