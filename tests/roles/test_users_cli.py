"""The user and token commands: users create/set-role/list, create-token NAME --user, create-admin."""
from __future__ import annotations

from typing import Any

from chime.extensions import db
from chime.models import ApiToken, AuditEvent, User
from tests.roles.conftest import PASSWORD
from webapp.auth import create_user, hash_token


def run(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


def test_users_create_makes_a_user_with_the_role_and_list_shows_it(app: Any) -> None:
    created = run(app, "users", "create", "ada", "--role", "operator", "--password", PASSWORD)

    assert created.exit_code == 0, created.output
    listed = run(app, "users", "list").output
    assert listed.splitlines()[0].split() == ["USER", "ROLE", "STATE", "CREATED"]
    assert listed.splitlines()[1].split()[:3] == ["ada", "operator", "active"]
    [event] = db.session.query(AuditEvent).filter_by(action="create").all()
    assert event.after["role"] == "operator"


def test_users_create_refuses_a_short_password_and_an_unknown_role(app: Any) -> None:
    short = run(app, "users", "create", "ada", "--password", "short")
    unknown = run(app, "users", "create", "ada", "--role", "boss", "--password", PASSWORD)

    assert short.exit_code != 0 and "password: must be text of 8 to 1000 characters" in short.output
    assert unknown.exit_code != 0 and "boss" in unknown.output
    assert db.session.query(User).count() == 0


def test_users_set_role_changes_the_role_but_not_of_the_last_admin(app: Any) -> None:
    create_user("root", PASSWORD, role="admin")
    create_user("bob", PASSWORD, role="viewer")

    assert run(app, "users", "set-role", "bob", "admin").exit_code == 0
    assert run(app, "users", "set-role", "root", "viewer").exit_code == 0
    refused = run(app, "users", "set-role", "bob", "operator")

    assert refused.exit_code != 0 and "bob is the last active admin" in refused.output
    db.session.expire_all()
    assert {u.username: u.role for u in db.session.query(User)} == {"root": "viewer", "bob": "admin"}


def test_create_token_belongs_to_the_named_user_and_carries_their_role(app: Any, client: Any) -> None:
    create_user("root", PASSWORD, role="admin")
    create_user("vera", PASSWORD, role="viewer")

    made = run(app, "create-token", "laptop", "--user", "vera")

    assert made.exit_code == 0, made.output
    token = made.output.strip()
    stored = db.session.query(ApiToken).one()
    assert (stored.name, stored.user.username, stored.token_hash) == ("laptop", "vera", hash_token(token))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/tasks/", headers=headers).status_code == 200
    assert client.post("/api/tasks/", headers=headers, json={}).status_code == 403


def test_create_token_without_user_goes_to_the_only_admin(app: Any) -> None:
    create_user("root", PASSWORD, role="admin")
    create_user("vera", PASSWORD, role="viewer")

    assert run(app, "create-token", "ci").exit_code == 0

    assert db.session.query(ApiToken).one().user.username == "root"


def test_create_token_without_user_is_an_error_unless_exactly_one_admin_exists(app: Any) -> None:
    none = run(app, "create-token", "ci")
    create_user("root", PASSWORD, role="admin")
    create_user("root2", PASSWORD, role="admin")
    two = run(app, "create-token", "ci")
    unknown = run(app, "create-token", "ci", "--user", "nobody")

    assert none.exit_code != 0 and "no active admin exists" in none.output
    assert two.exit_code != 0 and "2 active admins exist" in two.output
    assert unknown.exit_code != 0 and "No user named 'nobody'" in unknown.output
    assert db.session.query(ApiToken).count() == 0


def test_create_admin_still_makes_an_admin(app: Any) -> None:
    made = run(app, "create-admin", "--username", "boss", "--password", PASSWORD)

    assert made.exit_code == 0, made.output
    assert db.session.query(User).one().role == "admin"
