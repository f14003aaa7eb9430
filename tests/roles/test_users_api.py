"""Users and tokens through the API: admins manage users; every user manages their own tokens."""
from __future__ import annotations

from typing import Any

import pytest

from chime.extensions import db
from chime.models import ApiToken, AuditEvent, User
from tests.roles.conftest import PASSWORD, bearer
from webapp import auth
from webapp.auth import create_user, hash_token


def events(action: str) -> list[AuditEvent]:
    return db.session.query(AuditEvent).filter_by(action=action).order_by(AuditEvent.id).all()


def test_an_admin_creates_a_user_with_a_role_and_the_answer_holds_no_secret(client: Any) -> None:
    admin = bearer("root", "admin")

    created = client.post("/api/users/", headers=admin, json={"username": "ada", "password": PASSWORD,
                                                               "role": "operator"})

    assert created.status_code == 201
    body = created.get_json()
    assert body["username"] == "ada" and body["role"] == "operator" and body["active"] is True
    assert "password" not in created.get_data(as_text=True) and PASSWORD not in created.get_data(as_text=True)
    assert created.headers["Location"].endswith(f"/api/users/{body['id']}/")
    assert auth.authenticate("ada", PASSWORD) is not None
    [event] = events("create")
    assert event.object_type == "user" and event.after == {"username": "ada", "role": "operator", "active": True}
    assert event.actor_name == "root (token test)"


@pytest.mark.parametrize("body,field", [
    ({"username": "ada", "password": "short", "role": "viewer"}, "password"),
    ({"username": "ada", "password": PASSWORD, "role": "boss"}, "role"),
    ({"username": "two words", "password": PASSWORD}, "username"),
    ({"password": PASSWORD}, "username"),
    ({"username": "ada", "password": PASSWORD, "is_admin": True}, "is_admin"),
], ids=["a short password", "an unknown role", "a name with a space", "no name", "an unknown field"])
def test_a_bad_new_user_is_a_400_naming_the_field(client: Any, body: dict[str, Any], field: str) -> None:
    admin = bearer("root", "admin")

    refused = client.post("/api/users/", headers=admin, json=body)

    assert refused.status_code == 400 and field in refused.get_json()["fields"]
    assert db.session.query(User).count() == 1


def test_a_taken_name_is_a_409(client: Any) -> None:
    admin = bearer("root", "admin")

    refused = client.post("/api/users/", headers=admin, json={"username": "root", "password": PASSWORD})

    assert refused.status_code == 409


def test_an_admin_lists_users_with_their_roles(client: Any) -> None:
    admin = bearer("root", "admin")
    create_user("bob", PASSWORD, role="viewer")

    listed = client.get("/api/users/", headers=admin).get_json()

    assert [(u["username"], u["role"]) for u in listed["results"]] == [("bob", "viewer"), ("root", "admin")]
    assert listed["count"] == 2


def test_an_admin_changes_a_role_and_the_audit_has_before_and_after(client: Any) -> None:
    admin = bearer("root", "admin")
    bob = create_user("bob", PASSWORD, role="viewer")

    changed = client.patch(f"/api/users/{bob.id}/", headers=admin, json={"role": "operator"})

    assert changed.status_code == 200 and changed.get_json()["role"] == "operator"
    [event] = events("role_change")
    assert (event.object_id, event.before, event.after) == (str(bob.id), {"role": "viewer"}, {"role": "operator"})


def test_a_disabled_user_cannot_sign_in_or_use_tokens_until_enabled(client: Any) -> None:
    admin = bearer("root", "admin")
    bob_headers = bearer("bob", "viewer")
    bob = db.session.query(User).filter_by(username="bob").one()

    client.patch(f"/api/users/{bob.id}/", headers=admin, json={"active": False})

    assert client.get("/api/tasks/", headers=bob_headers).status_code == 401
    assert auth.authenticate("bob", PASSWORD) is None
    client.patch(f"/api/users/{bob.id}/", headers=admin, json={"active": True})
    assert client.get("/api/tasks/", headers=bob_headers).status_code == 200
    assert [e.action for e in db.session.query(AuditEvent).filter_by(object_type="user", object_id=str(bob.id))
            .order_by(AuditEvent.id)] == ["deactivate", "activate"]


def test_a_password_reset_works_and_its_audit_holds_no_password(client: Any) -> None:
    admin = bearer("root", "admin")
    bob = create_user("bob", PASSWORD, role="viewer")

    reset = client.patch(f"/api/users/{bob.id}/", headers=admin, json={"password": "another long one"})

    assert reset.status_code == 200
    assert auth.authenticate("bob", "another long one") is not None and auth.authenticate("bob", PASSWORD) is None
    [event] = events("password_change")
    assert "another long one" not in str((event.before, event.after, event.details))


@pytest.mark.parametrize("change", [{"active": "no"}, {"active": 0}, {"role": None, "active": "false"}],
                         ids=["the word no", "zero", "a string"])
def test_active_must_be_a_json_boolean(client: Any, change: dict[str, Any]) -> None:
    admin = bearer("root", "admin")
    bob = create_user("bob", PASSWORD, role="viewer")

    refused = client.patch(f"/api/users/{bob.id}/", headers=admin, json=change)

    assert refused.status_code == 400 and refused.get_json()["fields"] == {"active": "must be true or false"}


def test_a_too_short_reset_password_is_a_400_and_changes_nothing(client: Any) -> None:
    admin = bearer("root", "admin")
    bob = create_user("bob", PASSWORD, role="viewer")

    refused = client.patch(f"/api/users/{bob.id}/", headers=admin, json={"password": "short", "role": "admin"})

    assert refused.status_code == 400 and "password" in refused.get_json()["fields"]
    db.session.expire_all()
    assert db.session.get(User, bob.id).role == "viewer" and auth.authenticate("bob", PASSWORD) is not None


def test_deleting_a_user_deletes_their_tokens(client: Any) -> None:
    admin = bearer("root", "admin")
    bob_headers = bearer("bob", "operator")
    bob = db.session.query(User).filter_by(username="bob").one()

    assert client.delete(f"/api/users/{bob.id}/", headers=admin).status_code == 204

    assert client.get("/api/tasks/", headers=bob_headers).status_code == 401
    assert db.session.query(User).filter_by(username="bob").count() == 0
    assert db.session.query(ApiToken).count() == 1
    [event] = events("delete")
    assert event.before == {"username": "bob", "role": "operator", "active": True}


@pytest.mark.parametrize("change", [
    {"role": "operator"}, {"active": False},
], ids=["demoted", "disabled"])
def test_the_last_active_admin_cannot_be_demoted_or_disabled(client: Any, change: dict[str, Any]) -> None:
    admin = bearer("root", "admin")
    root = db.session.query(User).filter_by(username="root").one()

    refused = client.patch(f"/api/users/{root.id}/", headers=admin, json=change)

    assert refused.status_code == 409 and "last active admin" in refused.get_json()["message"]
    db.session.expire_all()
    assert (root.role, root.active) == ("admin", True)
    assert events("role_change") == events("deactivate") == []


def test_the_last_active_admin_cannot_be_deleted(client: Any) -> None:
    admin = bearer("root", "admin")
    root = db.session.query(User).filter_by(username="root").one()

    refused = client.delete(f"/api/users/{root.id}/", headers=admin)

    assert refused.status_code == 409 and "last active admin" in refused.get_json()["message"]
    assert db.session.query(User).count() == 1 and events("delete") == []


def test_a_disabled_admin_does_not_count_as_another_admin(client: Any) -> None:
    admin = bearer("root", "admin")
    root = db.session.query(User).filter_by(username="root").one()
    other = create_user("other", PASSWORD, role="admin")
    assert client.patch(f"/api/users/{other.id}/", headers=admin, json={"active": False}).status_code == 200

    assert client.patch(f"/api/users/{root.id}/", headers=admin, json={"role": "viewer"}).status_code == 409


def test_with_two_admins_one_may_step_down(client: Any) -> None:
    admin = bearer("root", "admin")
    root = db.session.query(User).filter_by(username="root").one()
    create_user("other", PASSWORD, role="admin")

    assert client.patch(f"/api/users/{root.id}/", headers=admin, json={"role": "viewer"}).status_code == 200
    assert client.get("/api/users/", headers=admin).status_code == 403  # the token carries the new role


def test_an_unknown_user_is_a_404(client: Any) -> None:
    admin = bearer("root", "admin")

    assert client.patch("/api/users/999/", headers=admin, json={"role": "viewer"}).status_code == 404
    assert client.delete("/api/users/999/", headers=admin).status_code == 404


# --------------------------------------------------------------------------- tokens


def test_a_viewer_creates_lists_and_revokes_their_own_token(client: Any) -> None:
    viewer = bearer("vera", "viewer")

    created = client.post("/api/tokens/", headers=viewer, json={"name": "laptop"})
    assert created.status_code == 201
    token = created.get_json()["token"]
    assert client.get("/api/tasks/", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    listed = client.get("/api/tokens/", headers=viewer).get_json()["results"]
    assert [t["name"] for t in listed] == ["laptop", "test"]
    assert all(set(t) == {"id", "name", "user_id", "created_at", "last_used_at"} for t in listed)
    stored = db.session.query(ApiToken).filter_by(name="laptop").one()
    assert token not in client.get("/api/tokens/", headers=viewer).get_data(as_text=True)
    assert stored.token_hash not in client.get("/api/tokens/", headers=viewer).get_data(as_text=True)

    assert client.delete(f"/api/tokens/{created.get_json()['id']}/", headers=viewer).status_code == 204
    assert client.get("/api/tasks/", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert [(e.action, e.object_name, e.details) for e in events("token_create") + events("token_revoke")] == [
        ("token_create", "laptop", {"owner": "vera"}), ("token_revoke", "laptop", {"owner": "vera"})]


def test_a_token_lists_its_last_use(client: Any) -> None:
    viewer = bearer("vera", "viewer")

    client.get("/api/tasks/", headers=viewer)

    [listed] = client.get("/api/tokens/", headers=viewer).get_json()["results"]
    assert listed["last_used_at"] is not None


def test_a_user_cannot_see_or_revoke_another_users_token(client: Any) -> None:
    vera = bearer("vera", "viewer")
    bob = bearer("bob", "operator")
    bobs = db.session.query(ApiToken).join(User).filter(User.username == "bob").one()
    bob_user = db.session.query(User).filter_by(username="bob").one()

    assert client.delete(f"/api/tokens/{bobs.id}/", headers=vera).status_code == 404
    assert client.get(f"/api/tokens/?user={bob_user.id}", headers=vera).status_code == 403
    assert client.post("/api/tokens/", headers=vera, json={"name": "x", "user_id": bob_user.id}).status_code == 403
    assert client.get("/api/tasks/", headers=bob).status_code == 200
    assert events("token_revoke") == [] and db.session.query(ApiToken).count() == 2


def test_an_admin_lists_and_revokes_any_users_token_and_creates_one_for_them(client: Any) -> None:
    admin = bearer("root", "admin")
    bob = bearer("bob", "viewer")
    bob_user = db.session.query(User).filter_by(username="bob").one()

    listed = client.get(f"/api/tokens/?user={bob_user.id}", headers=admin).get_json()["results"]
    assert [t["user_id"] for t in listed] == [bob_user.id]
    assert client.delete(f"/api/tokens/{listed[0]['id']}/", headers=admin).status_code == 204
    assert client.get("/api/tasks/", headers=bob).status_code == 401

    made = client.post("/api/tokens/", headers=admin, json={"name": "deploy", "user_id": bob_user.id})
    assert made.status_code == 201 and made.get_json()["user_id"] == bob_user.id
    stored = db.session.get(ApiToken, made.get_json()["id"])
    assert stored.token_hash == hash_token(made.get_json()["token"])


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}, ["ci"], {"name": 5}],
                         ids=["no name", "empty", "blank", "too long", "not an object", "not text"])
def test_a_bad_token_request_is_a_400(client: Any, body: Any) -> None:
    viewer = bearer("vera", "viewer")

    assert client.post("/api/tokens/", headers=viewer, json=body).status_code == 400
    assert db.session.query(ApiToken).count() == 1
