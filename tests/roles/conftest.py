"""Fixtures for the role tests: cheap password hashes, users of each role, signed-in admin clients."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

import chime.users
from chime.enums import Role
from tests.admin.conftest import AdminClient, sign_in
from webapp import auth
from webapp.auth import create_token, create_user

PASSWORD = "a long enough password"


def cheap_hash(password: str) -> str:
    return generate_password_hash(password, "pbkdf2:sha256:1000")


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash test passwords with few iterations (these tests create and sign in many users)."""
    monkeypatch.setattr(chime.users, "hash_password", cheap_hash)
    monkeypatch.setattr(auth, "hash_password", cheap_hash)
    monkeypatch.setattr(auth, "DUMMY_HASH", cheap_hash("not-a-real-password"))


def bearer(username: str, role: Role | str) -> dict[str, str]:
    """The Authorization header of a token of a new user with that role."""
    user = create_user(username, PASSWORD, role=Role(role))
    return {"Authorization": f"Bearer {create_token('test', user)}"}


@pytest.fixture
def signed_in(app: Any) -> Callable[[str, Role | str], AdminClient]:
    """signed_in(username, role): a new user with that role, signed in on a client of their own."""

    def sign_in_as(username: str, role: Role | str) -> AdminClient:
        create_user(username, PASSWORD, role=Role(role))
        client = app.test_client()
        response = sign_in(client, username, PASSWORD)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return AdminClient(client)

    return sign_in_as
