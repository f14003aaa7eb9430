"""The admin's channel pages: list, new, edit (secrets never shown, blank keeps them), test, delivery log."""
from __future__ import annotations

import datetime as dt
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
    assert channel.config == {"url": "https://hooks.example.com/…"} and channel.secret_names == ["secret", "url"]
    for path in ("/channels", f"/channels/{channel.id}", f"/channels/{channel.id}/edit"):
        assert SECRET not in admin.html(path)
    assert "leave blank to keep" in admin.html(f"/channels/{channel.id}/edit")


def test_a_bad_url_shows_the_form_again_with_the_reason_and_without_the_secret(admin: AdminClient) -> None:
    response = new_webhook(admin, url="http://127.0.0.1/hook")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "config.url" in html and "loopback" in html and SECRET not in html
    assert db.session.scalar(select(Channel)) is None


def test_editing_with_a_blank_secret_and_url_keeps_them(admin: AdminClient) -> None:
    new_webhook(admin)
    channel = db.session.scalar(select(Channel))
    sealed = channel.secrets
    response = admin.post(f"/channels/{channel.id}/edit", {"name": "renamed", "url": "", "secret": ""})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    db.session.expire_all()
    channel = db.session.scalar(select(Channel))
    assert (channel.name, channel.config["url"], channel.secrets) == ("renamed", "https://hooks.example.com/…", sealed)
    assert channel.enabled is False  # the checkbox was not sent


def test_editing_the_webhook_url_seals_the_new_one_and_shows_only_its_host(admin: AdminClient) -> None:
    new_webhook(admin)
    channel = db.session.scalar(select(Channel))
    sealed = channel.secrets
    response = admin.post(f"/channels/{channel.id}/edit", {"name": "ops-hook", "secret": "",
                                                           "url": "https://other.example.com/x?token=TOKEN-in-url-77"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    db.session.expire_all()
    channel = db.session.scalar(select(Channel))
    assert channel.config["url"] == "https://other.example.com/…" and channel.secrets != sealed
    for path in (f"/channels/{channel.id}", f"/channels/{channel.id}/edit", "/audit"):
        assert "TOKEN-in-url-77" not in admin.html(path)


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


EMAIL_FORM = {"kind": "email", "name": "mail", "enabled": "on", "host": "smtp.example.com", "port": "587",
              "security": "starttls", "from_address": "chime@example.com", "to": "ops@example.com",
              "timeout_seconds": "30"}


@pytest.mark.parametrize("field", ["port", "timeout_seconds"])
@pytest.mark.parametrize("digits", ["²", "٣٠", "３０"], ids=["superscript two", "arabic-indic 30", "fullwidth 30"])
def test_a_number_written_in_other_digits_is_a_400_not_a_500_nor_read_as_ascii(
        admin: AdminClient, field: str, digits: str) -> None:
    response = admin.post("/channels", {**EMAIL_FORM, field: digits})
    assert response.status_code == 400, response.get_data(as_text=True)[:500]
    assert f"config.{field}" in response.get_data(as_text=True)
    assert db.session.scalar(select(Channel)) is None


def test_muted_until_from_the_form_is_read_as_utc_and_shown_again_the_same_way(admin: AdminClient) -> None:
    response = admin.post("/channels", {**EMAIL_FORM, "muted_until": "2031-01-01T09:00"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    channel = db.session.scalar(select(Channel))
    assert channel.muted_until == dt.datetime(2031, 1, 1, 9, 0, tzinfo=dt.timezone.utc)
    edit = admin.html(f"/channels/{channel.id}/edit")
    assert 'value="2031-01-01T09:00"' in edit
    saved = admin.post(f"/channels/{channel.id}/edit", {**EMAIL_FORM, "muted_until": "2031-01-01T09:00"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    later = admin.post(f"/channels/{channel.id}/edit", {**EMAIL_FORM, "muted_until": "2031-06-01T18:30:15"})
    assert later.status_code == 302
    unmuted = admin.post(f"/channels/{channel.id}/edit", {**EMAIL_FORM, "muted_until": ""})
    assert unmuted.status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(Channel.muted_until)) is None


def test_a_muted_until_stored_with_another_offset_is_prefilled_in_utc(admin: AdminClient) -> None:
    assert admin.post("/channels", EMAIL_FORM).status_code == 302
    channel = db.session.scalar(select(Channel))
    channel.muted_until = dt.datetime(2031, 1, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    db.session.commit()
    assert 'value="2031-01-01T09:00"' in admin.html(f"/channels/{channel.id}/edit")
