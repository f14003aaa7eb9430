"""The admin's channel pages: list, new, edit (secrets never shown, blank keeps them), test, delivery log."""
from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from chime.extensions import db
from chime.models import Channel, Delivery
from tests.admin.conftest import AdminClient

SECRET = "admin-form-SECRET-value-31"
SMTP_PASSWORD = "admin-form-SMTP-password-5"


@pytest.fixture(autouse=True)
def secrets_key(app: Any) -> None:
    app.config["SECRETS_KEY"] = Fernet.generate_key().decode()


def new_webhook(admin: AdminClient, **fields: str) -> Any:
    return admin.post("/channels", {"kind": "webhook", "name": "ops-hook", "enabled": "on",
                                    "url": "https://hooks.example.com/chime", "secret": SECRET, **fields})


def test_an_admin_creates_a_webhook_channel_whose_secret_is_never_shown(admin: AdminClient) -> None:
    response = new_webhook(admin)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    channel = db.session.scalar(select(Channel))
    assert channel.config == {"url": "https://hooks.example.com/chime"} and channel.secret_names == ["secret"]
    for path in ("/channels", f"/channels/{channel.id}", f"/channels/{channel.id}/edit"):
        assert SECRET not in admin.html(path)
    assert "leave blank to keep" in admin.html(f"/channels/{channel.id}/edit")


def test_a_bad_url_shows_the_form_again_with_the_reason_and_without_the_secret(admin: AdminClient) -> None:
    response = new_webhook(admin, url="http://127.0.0.1/hook")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "config.url" in html and "loopback" in html and SECRET not in html
    assert db.session.scalar(select(Channel)) is None


def test_editing_with_a_blank_secret_keeps_it(admin: AdminClient) -> None:
    new_webhook(admin)
    channel = db.session.scalar(select(Channel))
    sealed = channel.secrets
    response = admin.post(f"/channels/{channel.id}/edit", {"name": "renamed", "url": "https://hooks.example.com/x",
                                                           "secret": ""})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    db.session.expire_all()
    channel = db.session.scalar(select(Channel))
    assert (channel.name, channel.config["url"], channel.secrets) == ("renamed", "https://hooks.example.com/x", sealed)
    assert channel.enabled is False  # the checkbox was not sent


def test_an_email_channel_is_made_from_the_form(admin: AdminClient) -> None:
    response = admin.post("/channels", {"kind": "email", "name": "mail", "enabled": "on", "host": "smtp.example.com",
                                        "port": "465", "security": "tls", "username": "chime",
                                        "password": SMTP_PASSWORD, "from_address": "chime@example.com",
                                        "to": "ops@example.com\nb@example.com", "timeout_seconds": "20"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    channel = db.session.scalar(select(Channel))
    assert channel.config["to"] == ["ops@example.com", "b@example.com"] and channel.config["port"] == 465
    assert SMTP_PASSWORD not in admin.html(f"/channels/{channel.id}")


def test_send_a_test_queues_a_delivery_shown_in_the_log(admin: AdminClient) -> None:
    new_webhook(admin)
    channel = db.session.scalar(select(Channel))
    response = admin.post(f"/channels/{channel.id}/test")
    assert response.status_code == 302
    delivery = db.session.scalar(select(Delivery))
    assert delivery.event == "test"
    assert "pending" in admin.html(f"/channels/{channel.id}")


def test_deleting_a_channel_keeps_its_deliveries(admin: AdminClient) -> None:
    new_webhook(admin)
    channel = db.session.scalar(select(Channel))
    admin.post(f"/channels/{channel.id}/test")
    assert admin.post(f"/channels/{channel.id}/delete").status_code == 302
    assert db.session.scalar(select(Channel)) is None
    assert db.session.scalar(select(Delivery.channel_name)) == "ops-hook"
