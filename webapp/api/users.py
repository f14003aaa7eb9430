"""Routes for users (admins only) and API tokens (each user their own; an admin anyone's)."""
from __future__ import annotations

from typing import Any

from flask import jsonify, url_for
from sqlalchemy import select

from chime import users
from chime.enums import Role
from chime.errors import ForbiddenError
from chime.models import User
from chime.schemas.user import TokenCreated, TokenRead, UserRead
from chime.unit_of_work import unit_of_work
from webapp.api.blueprint import bp
from webapp.api.common import json_body, paginate, query_args
from webapp.auth import allow, current_actor
from chime.validation import MAX_ID


@bp.get("/users/")
@allow(Role.ADMIN)
def list_users() -> Any:
    return jsonify(paginate(select(User).order_by(User.username), UserRead.dump))


@bp.post("/users/")
@allow(Role.ADMIN)
def create_user() -> Any:
    with unit_of_work():
        user = users.create_user(json_body())
    response = jsonify(UserRead.dump(user))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_user", user_id=user.id)
    return response


@bp.get("/users/<int:user_id>/")
@allow(Role.ADMIN)
def get_user(user_id: int) -> Any:
    return jsonify(UserRead.dump(users.get_user(user_id)))


@bp.patch("/users/<int:user_id>/")
@allow(Role.ADMIN)
def update_user(user_id: int) -> Any:
    with unit_of_work():
        user = users.update_user(users.get_user(user_id), json_body())
    return jsonify(UserRead.dump(user))


@bp.delete("/users/<int:user_id>/")
@allow(Role.ADMIN)
def delete_user(user_id: int) -> Any:
    with unit_of_work():
        users.delete_user(users.get_user(user_id))
    return "", 204


@bp.get("/tokens/")
@allow(Role.VIEWER)
def list_tokens() -> Any:
    """The caller's own tokens; an admin may ask for another user's with ?user=<id>."""
    actor = current_actor()
    assert actor is not None  # the blueprint resolved it
    owner_id = query_args().integer("user", actor.user_id, 1, MAX_ID)  # a caller who is no user: every token
    if owner_id != actor.user_id and not actor.role.includes(Role.ADMIN):
        raise ForbiddenError("Only an admin may list another user's tokens")
    return jsonify(paginate(users.token_query(owner_id), TokenRead.dump))


@bp.post("/tokens/")
@allow(Role.VIEWER)
def create_token() -> Any:
    actor = current_actor()
    assert actor is not None
    with unit_of_work():
        row, token = users.create_token(json_body(), actor)
    response = jsonify(TokenCreated.dump({**TokenRead.dump(row), "token": token}))
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/tokens/<int:token_id>/")
@allow(Role.VIEWER)
def revoke_token(token_id: int) -> Any:
    actor = current_actor()
    assert actor is not None
    with unit_of_work():
        users.revoke_token(token_id, actor)
    return "", 204
