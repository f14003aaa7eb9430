"""Admin pages for users (admins only) and for each user's own API tokens (any role)."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, session, url_for

from chime import users
from chime.enums import Role
from chime.errors import ChimeError
from chime.models import User
from chime.unit_of_work import unit_of_work
from webapp.admin.blueprint import bp
from webapp.admin.views import safe_next
from webapp.auth import allow, current_actor, current_user

ROLES = tuple(Role)


@bp.get("/users")
@allow(Role.ADMIN)
def user_list() -> Any:
    return render_template("users/list.html", users=users.list_users(), roles=ROLES, values={}, errors={})


@bp.post("/users")
@allow(Role.ADMIN)
def user_create() -> Any:
    values = {name: request.form.get(name, "") for name in ("username", "password", "role")}
    try:
        with unit_of_work():
            user = users.create_user(values)
    except ChimeError as error:
        html = render_template("users/list.html", users=users.list_users(), roles=ROLES, errors=error.fields or {},
                               message=error.message, values={**values, "password": ""})
        return html, error.status
    flash(f"User “{user.username}” created ({Role(user.role).value}).", "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.get("/users/<int:user_id>")
@allow(Role.ADMIN)
def user_detail(user_id: int) -> Any:
    user = users.get_user(user_id)
    return render_template("users/detail.html", user=user, roles=ROLES, tokens=users.list_tokens(user.id))


def change_user(user_id: int, payload: dict[str, Any], done: str) -> Any:
    """Apply one change to a user; a refusal (last admin, bad password) is flashed on the user's page."""
    user = users.get_user(user_id)
    try:
        with unit_of_work():
            users.update_user(user, payload)
    except ChimeError as error:
        if error.status == 404:
            raise
        flash(error.message, "error")
    else:
        flash(done.format(name=user.username), "success")
    return redirect(after_change(user))


def after_change(user: User) -> str:
    """Where to go once `user` changed: their page, unless the admin changed themselves out of it."""
    me = current_user()
    if me is not None and me.id == user.id:
        if not user.active or session.get("generation") != user.session_generation:
            session.clear()  # disabled, or a new password: this session has ended too
            return url_for("admin.login")
        if not Role(user.role).includes(Role.ADMIN):
            return url_for("admin.dashboard")
    return url_for("admin.user_detail", user_id=user.id)


@bp.post("/users/<int:user_id>/role")
@allow(Role.ADMIN)
def user_set_role(user_id: int) -> Any:
    role = request.form.get("role", "")
    return change_user(user_id, {"role": role}, f"{{name}} is now {role.lower()}.")


@bp.post("/users/<int:user_id>/active")
@allow(Role.ADMIN)
def user_set_active(user_id: int) -> Any:
    active = request.form.get("active") == "true"
    return change_user(user_id, {"active": active}, "{name} is " + ("enabled." if active else "disabled."))


@bp.post("/users/<int:user_id>/password")
@allow(Role.ADMIN)
def user_set_password(user_id: int) -> Any:
    return change_user(user_id, {"password": request.form.get("password", "")},
                       "The password of {name} was changed; their sessions have ended.")


@bp.post("/users/<int:user_id>/delete")
@allow(Role.ADMIN)
def user_delete(user_id: int) -> Any:
    user = users.get_user(user_id)
    name = user.username
    try:
        with unit_of_work():
            users.delete_user(user)
    except ChimeError as error:
        if error.status == 404:
            raise
        flash(error.message, "error")
        return redirect(url_for("admin.user_detail", user_id=user_id))
    flash(f"User “{name}” and their tokens were deleted.", "success")
    return redirect(url_for("admin.user_list"))


# --------------------------------------------------------------------------- tokens


@bp.get("/tokens")
@allow(Role.VIEWER)
def token_list() -> Any:
    return render_tokens(own_user())


@bp.post("/tokens")
@allow(Role.VIEWER)
def token_create() -> Any:
    user = own_user()
    try:
        with unit_of_work():
            row, token = users.create_token({"name": request.form.get("name", "")}, require_actor())
    except ChimeError as error:
        return render_tokens(user, errors=error.fields or {"name": error.message}), error.status
    html = render_tokens(user, created=(row, token))
    return html, 201, {"Cache-Control": "no-store"}  # the token itself is on this page only


@bp.post("/tokens/<int:token_id>/revoke")
@allow(Role.VIEWER)
def token_revoke(token_id: int) -> Any:
    with unit_of_work():
        name = users.revoke_token(token_id, require_actor())
    flash(f"Token “{name}” revoked.", "success")
    return redirect(safe_next(request.form.get("next"), url_for("admin.token_list")))


def own_user() -> User:
    user = current_user()
    assert user is not None  # the blueprint signed them in
    return user


def require_actor() -> Any:
    actor = current_actor()
    assert actor is not None
    return actor


def render_tokens(user: User, created: Any = None, errors: dict[str, str] | None = None) -> str:
    return render_template("users/tokens.html", user=user, tokens=users.list_tokens(user.id), created=created,
                           errors=errors or {})
