"""Users and tokens in the admin: admins manage users at /users; every user manages their tokens at /tokens."""
from __future__ import annotations

import re
from typing import Any

from chime.extensions import db
from chime.models import ApiToken, AuditEvent, User
from webapp import auth
from webapp.auth import create_token, create_user
from tests.roles.conftest import PASSWORD, bearer

NEW_TOKEN = re.compile(r"data-token-value>([^<]+)<")


def user_named(name: str) -> User:
    db.session.expire_all()
    return db.session.query(User).filter_by(username=name).one()


def test_an_admin_creates_a_user_with_a_role_from_the_users_page(signed_in: Any) -> None:
    admin = signed_in("root", "admin")
    assert "New user" in admin.html("/users")

    created = admin.post("/users", {"username": "ada", "password": PASSWORD, "role": "operator"})

    assert created.status_code == 302
    ada = user_named("ada")
    assert created.headers["Location"].endswith(f"/users/{ada.id}")
    assert ada.role == "operator" and auth.authenticate("ada", PASSWORD) is not None
    page = admin.html("/users")
    assert "ada" in page and "operator" in page


def test_a_short_password_on_the_users_page_is_a_400_that_says_why(signed_in: Any) -> None:
    admin = signed_in("root", "admin")

    refused = admin.post("/users", {"username": "ada", "password": "short", "role": "viewer"})

    assert refused.status_code == 400
    assert "must be text of 8 to 1000 characters" in refused.get_data(as_text=True)
    assert db.session.query(User).filter_by(username="ada").count() == 0


def test_an_admin_changes_role_disables_enables_and_resets_a_password(signed_in: Any) -> None:
    admin = signed_in("root", "admin")
    bob = create_user("bob", PASSWORD, role="viewer")

    assert admin.post(f"/users/{bob.id}/role", {"role": "operator"}).status_code == 302
    assert user_named("bob").role == "operator"
    admin.post(f"/users/{bob.id}/active", {"active": "false"})
    assert user_named("bob").active is False
    admin.post(f"/users/{bob.id}/active", {"active": "true"})
    assert user_named("bob").active is True
    admin.post(f"/users/{bob.id}/password", {"password": "a brand new one"})
    assert auth.authenticate("bob", "a brand new one") is not None

    actions = [e.action for e in db.session.query(AuditEvent).filter_by(object_type="user", object_id=str(bob.id))
               .order_by(AuditEvent.id)]
    assert actions == ["role_change", "deactivate", "activate", "password_change"]


def test_the_last_admin_is_told_why_they_cannot_demote_disable_or_delete_themselves(signed_in: Any) -> None:
    admin = signed_in("root", "admin")
    root = user_named("root")

    for path, data in ((f"/users/{root.id}/role", {"role": "viewer"}), (f"/users/{root.id}/active", {"active": "false"}),
                       (f"/users/{root.id}/delete", {})):
        refused = admin.post(path, data, follow_redirects=True)
        assert "root is the last active admin" in refused.get_data(as_text=True)

    root = user_named("root")
    assert (root.role, root.active) == ("admin", True)


def test_an_admin_deletes_a_user_and_their_tokens(signed_in: Any) -> None:
    admin = signed_in("root", "admin")
    bob = create_user("bob", PASSWORD, role="operator")
    create_token("ci", bob)

    deleted = admin.post(f"/users/{bob.id}/delete")

    assert deleted.status_code == 302 and deleted.headers["Location"].endswith("/users")
    assert db.session.query(User).filter_by(username="bob").count() == 0
    assert db.session.query(ApiToken).count() == 0


def test_an_admin_who_steps_down_lands_on_the_dashboard(signed_in: Any) -> None:
    admin = signed_in("root", "admin")
    create_user("other", PASSWORD, role="admin")
    root = user_named("root")

    stepped_down = admin.post(f"/users/{root.id}/role", {"role": "viewer"})

    assert stepped_down.status_code == 302 and stepped_down.headers["Location"].endswith("/")
    assert admin.get("/users").status_code == 403


def test_a_viewer_creates_sees_once_and_revokes_their_own_token(signed_in: Any, client: Any) -> None:
    viewer = signed_in("vera", "viewer")
    assert "Users" not in viewer.html("/tokens").split("<main")[0]  # no admin link in the navigation

    created = viewer.post("/tokens", {"name": "laptop"})

    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    token = NEW_TOKEN.search(created.get_data(as_text=True)).group(1)
    assert client.get("/api/tasks/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listing = viewer.html("/tokens")
    assert "laptop" in listing and token not in listing
    row = db.session.query(ApiToken).filter_by(name="laptop").one()
    assert viewer.post(f"/tokens/{row.id}/revoke").status_code == 302
    assert client.get("/api/tasks/", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_viewer_cannot_revoke_another_users_token(signed_in: Any) -> None:
    viewer = signed_in("vera", "viewer")
    bob = create_user("bob", PASSWORD, role="operator")
    create_token("ci", bob)
    bobs = db.session.query(ApiToken).one()

    assert viewer.post(f"/tokens/{bobs.id}/revoke").status_code == 404
    assert db.session.query(ApiToken).count() == 1


def test_an_admin_revokes_another_users_token_from_their_page(signed_in: Any) -> None:
    admin = signed_in("root", "admin")
    bob = create_user("bob", PASSWORD, role="operator")
    create_token("ci", bob)
    bobs = db.session.query(ApiToken).one()
    assert "ci" in admin.html(f"/users/{bob.id}")

    revoked = admin.post(f"/tokens/{bobs.id}/revoke", {"next": f"/users/{bob.id}"})

    assert revoked.status_code == 302 and revoked.headers["Location"].endswith(f"/users/{bob.id}")
    assert db.session.query(ApiToken).count() == 0


def test_a_blank_token_name_is_a_400(signed_in: Any) -> None:
    viewer = signed_in("vera", "viewer")

    refused = viewer.post("/tokens", {"name": "  "})

    assert refused.status_code == 400 and db.session.query(ApiToken).count() == 0


def test_the_users_list_shows_when_each_user_last_signed_in(signed_in: Any, client: Any) -> None:
    admin = signed_in("root", "admin")
    create_user("never", PASSWORD, role="viewer")

    assert user_named("root").last_login_at is not None and user_named("never").last_login_at is None
    listed = {u["username"]: u["last_login_at"] for u in
              client.get("/api/users/", headers=bearer("api-admin", "admin")).get_json()["results"]}
    assert listed["root"] is not None and listed["never"] is None
    assert "Never" in admin.html("/users")
