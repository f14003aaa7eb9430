"""Alert channels through the API: create, read, change, delete, test; secrets are write-only."""
from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from chime.enums import Role
from chime.extensions import db
from chime.models import AuditEvent, Channel, Delivery
from chime.redis_keys import ALERTS_QUEUE
from tests.roles.conftest import bearer

SECRET = "s3cr3t-signing-VALUE-9f8e7d"  # a secret-looking string: it must never come back
SLACK_URL = "https://hooks.slack.com/services/T0001/B0002/TOKENtokenTOKEN1234"
WEBHOOK = {"name": "ops-hook", "kind": "webhook", "config": {"url": "https://hooks.example.com/chime"},
           "secrets": {"secret": SECRET}}


@pytest.fixture(autouse=True)
def secrets_key(app: Any) -> None:
    app.config["SECRETS_KEY"] = Fernet.generate_key().decode()


def leaks(response: Any, *secrets: str) -> bool:
    body = response.get_data(as_text=True)
    return any(secret in body for secret in secrets)


def test_a_webhook_channel_is_created_and_its_secret_is_only_said_to_be_set(api: Any) -> None:
    created = api.post("/api/channels/", json=WEBHOOK)
    assert created.status_code == 201, created.json
    assert created.json["secrets"] == {"secret": "set", "url": "set"}
    assert created.json["config"] == {"url": "https://hooks.example.com/…"}, "the URL is write-only too"
    assert created.headers["Location"].endswith(f"/api/channels/{created.json['id']}/")
    shown = api.get(f"/api/channels/{created.json['id']}/")
    listed = api.get("/api/channels/")
    assert listed.json["count"] == 1
    assert not any(leaks(r, SECRET) for r in (created, shown, listed))


def test_the_secret_is_stored_encrypted_not_as_text(api: Any) -> None:
    api.post("/api/channels/", json=WEBHOOK)
    channel = db.session.scalar(select(Channel))
    assert SECRET not in (channel.secrets or "")
    assert SECRET not in json.dumps(channel.config)


def test_a_slack_url_is_a_secret_and_never_shown(api: Any) -> None:
    created = api.post("/api/channels/", json={"name": "slack", "kind": "slack", "secrets": {"url": SLACK_URL}})
    assert created.status_code == 201, created.json
    assert created.json["secrets"] == {"url": "set"}
    assert not leaks(created, "TOKENtokenTOKEN1234")


@pytest.mark.parametrize("body, field", [
    ({**WEBHOOK, "config": {"url": "not a url"}}, "config.url"),
    ({**WEBHOOK, "config": {"url": "ftp://example.com/x"}}, "config.url"),
    ({**WEBHOOK, "config": {"url": "http://127.0.0.1:9/hook"}}, "config.url"),
    ({**WEBHOOK, "config": {"url": "http://169.254.169.254/latest"}}, "config.url"),
    ({**WEBHOOK, "secrets": {}}, "secrets.secret"),
    ({"name": "s", "kind": "slack", "secrets": {}}, "secrets.url"),
    ({"name": "s", "kind": "slack", "secrets": {"url": "http://10.0.0.5/hook"}}, "secrets.url"),
    ({"name": "m", "kind": "email", "config": {"host": "smtp.example.com", "from_address": "not-an-address",
                                               "to": ["ops@example.com"]}}, "config.from_address"),
    ({"name": "m", "kind": "email", "config": {"host": "smtp.example.com", "from_address": "a@example.com",
                                               "to": []}}, "config.to"),
    ({"name": "m", "kind": "email", "config": {"host": "smtp.example.com", "from_address": "a@example.com",
                                               "to": ["ops@example.com"], "username": "u"}}, "secrets.password"),
    ({**WEBHOOK, "kind": "pager"}, "kind"),
    ({**WEBHOOK, "name": "  "}, "name"),
    ({**WEBHOOK, "extra": 1}, "extra"),
], ids=["malformed url", "not http", "loopback refused by egress", "metadata refused", "missing webhook secret",
        "missing slack url", "slack url to a private address", "malformed sender", "no recipients",
        "login without password", "unknown kind", "blank name", "unknown field"])
def test_bad_channels_are_a_400_naming_the_field(api: Any, body: dict[str, Any], field: str) -> None:
    response = api.post("/api/channels/", json=body)
    assert response.status_code == 400, response.json
    assert field in response.json["fields"], response.json
    assert db.session.scalar(select(Channel)) is None


def test_a_refused_url_error_never_quotes_the_secret_url(api: Any) -> None:
    url = "http://10.1.2.3/services/T/B/PRIVATEtoken99"
    response = api.post("/api/channels/", json={"name": "s", "kind": "slack", "secrets": {"url": url}})
    assert response.status_code == 400
    assert not leaks(response, "PRIVATEtoken99")


def test_without_a_secrets_key_a_channel_with_secrets_cannot_be_saved(app: Any, api: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app.config["SECRETS_KEY"] = None
    monkeypatch.delenv("CHIME_SECRETS_KEY", raising=False)
    response = api.post("/api/channels/", json=WEBHOOK)
    assert response.status_code == 400
    assert "CHIME_SECRETS_KEY" in response.json["fields"]["secrets"]


def test_a_duplicate_name_is_a_409(api: Any) -> None:
    assert api.post("/api/channels/", json=WEBHOOK).status_code == 201
    assert api.post("/api/channels/", json=WEBHOOK).status_code == 409


def test_a_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(api: Any) -> None:
    channel_id = api.post("/api/channels/", json=WEBHOOK).json["id"]
    sealed = db.session.scalar(select(Channel.secrets))
    kept = api.patch(f"/api/channels/{channel_id}/", json={"enabled": False, "secrets": {"secret": ""}})
    assert kept.status_code == 200, kept.json
    assert kept.json["enabled"] is False and kept.json["secrets"] == {"secret": "set", "url": "set"}
    db.session.expire_all()
    assert db.session.scalar(select(Channel.secrets)) == sealed
    replaced = api.patch(f"/api/channels/{channel_id}/", json={"secrets": {"secret": "another-secret-value"}})
    assert replaced.status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(Channel.secrets)) != sealed
    removed = api.patch(f"/api/channels/{channel_id}/", json={"secrets": {"secret": None}})
    assert removed.status_code == 400 and "secrets.secret" in removed.json["fields"]


def test_the_kind_cannot_change_and_a_bad_patch_is_a_400(api: Any) -> None:
    channel_id = api.post("/api/channels/", json=WEBHOOK).json["id"]
    assert api.patch(f"/api/channels/{channel_id}/", json={"kind": "slack"}).status_code == 400
    bad = api.patch(f"/api/channels/{channel_id}/", json={"config": {"url": "http://127.0.0.1/x"}})
    assert bad.status_code == 400 and "config.url" in bad.json["fields"]


def test_every_change_is_audited_without_the_secret(api: Any) -> None:
    channel_id = api.post("/api/channels/", json=WEBHOOK).json["id"]
    api.patch(f"/api/channels/{channel_id}/", json={"secrets": {"secret": "rotated-SECRET-value-1"}})
    api.post(f"/api/channels/{channel_id}/test/")
    api.delete(f"/api/channels/{channel_id}/")
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "channel")
                                .order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["create", "update", "test", "delete"]
    assert events[1].details == {"write_only_changed": ["secret"]}
    trail = json.dumps([[e.before, e.after, e.details] for e in events])
    assert SECRET not in trail and "rotated-SECRET-value-1" not in trail
    audit_api = api.get("/api/audit/?object_type=channel")
    assert audit_api.status_code == 200 and not leaks(audit_api, SECRET, "rotated-SECRET-value-1")


def test_a_test_send_queues_a_delivery_on_the_alerts_queue(api: Any, redis_client: Any) -> None:
    channel_id = api.post("/api/channels/", json={**WEBHOOK, "enabled": False}).json["id"]
    response = api.post(f"/api/channels/{channel_id}/test/")
    assert response.status_code == 202, response.json
    delivery = response.json["delivery"]
    assert delivery["event"] == "test" and delivery["status"] == "pending" and delivery["attempts"] == 0
    assert redis_client.llen(f"rq:queue:{ALERTS_QUEUE}") == 1
    listed = api.get(f"/api/channels/{channel_id}/deliveries/")
    assert [d["delivery_id"] for d in listed.json["results"]] == [delivery["delivery_id"]]


def test_deliveries_are_listed_by_task(api: Any) -> None:
    assert api.get("/api/deliveries/?task_id=1").json["count"] == 0
    assert api.get("/api/deliveries/?task_id=abc").status_code == 400


def test_a_deleted_channels_deliveries_keep_its_name(api: Any) -> None:
    channel_id = api.post("/api/channels/", json=WEBHOOK).json["id"]
    api.post(f"/api/channels/{channel_id}/test/")
    assert api.delete(f"/api/channels/{channel_id}/").status_code == 204
    delivery = db.session.scalar(select(Delivery))
    db.session.refresh(delivery)
    assert delivery.channel_id is None and delivery.channel_name == "ops-hook"
    assert api.get(f"/api/channels/{channel_id}/").status_code == 404


@pytest.mark.parametrize("method, path, least", [
    ("post", "/api/channels/", Role.ADMIN),
    ("patch", "/api/channels/{id}/", Role.ADMIN),
    ("delete", "/api/channels/{id}/", Role.ADMIN),
    ("post", "/api/channels/{id}/test/", Role.OPERATOR),
])
def test_roles_guard_channel_changes(api: Any, client: Any, method: str, path: str, least: Role) -> None:
    channel_id = api.post("/api/channels/", json=WEBHOOK).json["id"]
    below = Role.VIEWER if least == Role.OPERATOR else Role.OPERATOR
    headers = bearer("below", below)
    response = client.open(path.format(id=channel_id), method=method.upper(), json={}, headers=headers)
    assert response.status_code == 403
    assert client.get("/api/channels/", headers=headers).status_code == 200


def test_the_cli_lists_channels_and_queues_a_test_without_showing_secrets(app: Any, api: Any) -> None:
    channel_id = api.post("/api/channels/", json=WEBHOOK).json["id"]
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["channels", "list"])
    assert listed.exit_code == 0 and "ops-hook" in listed.output and "secret set" in listed.output
    assert SECRET not in listed.output
    as_json = runner.invoke(args=["channels", "list", "--json"])
    assert json.loads(as_json.output)[0]["secrets"] == {"secret": "set", "url": "set"}
    tested = runner.invoke(args=["channels", "test", str(channel_id)])
    assert tested.exit_code == 0, tested.output
    assert db.session.scalar(select(Delivery.event)) == "test"
    assert runner.invoke(args=["channels", "test", "999"]).exit_code == 1


# --------------------------------------------------------------------------- write-only webhook URLs


def test_a_webhook_url_that_embeds_a_token_is_never_shown_only_its_scheme_and_host(app: Any, api: Any) -> None:
    token = "TOKEN-in-the-webhook-url-8b1"
    body = {**WEBHOOK, "config": {"url": f"https://hooks.example.com:8443/in/{token}?token={token}"}}
    created = api.post("/api/channels/", json=body)
    assert created.status_code == 201, created.json
    assert created.json["config"] == {"url": "https://hooks.example.com:8443/…"}
    channel_id = created.json["id"]
    changed = api.patch(f"/api/channels/{channel_id}/", json={"config": {"url": f"https://other.example.com/?t={token}2"}})
    assert changed.status_code == 200 and changed.json["config"] == {"url": "https://other.example.com/…"}
    renamed = api.patch(f"/api/channels/{channel_id}/", json={"name": "renamed", "config": {"url": ""}})
    assert renamed.status_code == 200 and renamed.json["config"] == {"url": "https://other.example.com/…"}
    responses = [created, changed, renamed, api.get(f"/api/channels/{channel_id}/"), api.get("/api/channels/"),
                 api.get("/api/audit/?object_type=channel")]
    assert not any(leaks(r, token) for r in responses)
    cli = app.test_cli_runner().invoke(args=["channels", "list", "--json"])
    assert cli.exit_code == 0 and token not in cli.output
    channel = db.session.scalar(select(Channel))
    assert token not in json.dumps(channel.config) and token not in (channel.secrets or "")
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "channel")).all()
    assert token not in json.dumps([[e.before, e.after, e.details] for e in events])
    assert events[1].details == {"write_only_changed": ["url"]}


def test_a_webhook_without_a_url_is_a_400_naming_config_url(api: Any) -> None:
    response = api.post("/api/channels/", json={**WEBHOOK, "config": {}})
    assert response.status_code == 400 and "config.url" in response.json["fields"], response.json


def test_a_webhook_saved_before_urls_were_sealed_is_shown_masked(api: Any) -> None:
    channel_id = api.post("/api/channels/", json=WEBHOOK).json["id"]
    db.session.execute(update(Channel).where(Channel.id == channel_id).values(
        config={"url": "https://hooks.example.com/chime?token=OLD-token-7"}, secret_names=["secret"]))
    db.session.commit()
    shown = api.get(f"/api/channels/{channel_id}/")
    assert shown.json["config"] == {"url": "https://hooks.example.com/…"}
    assert shown.json["secrets"] == {"secret": "set", "url": "set"} and not leaks(shown, "OLD-token-7")


# --------------------------------------------------------------------------- where an SMTP server may be


MAIL = {"name": "m", "kind": "email", "config": {"host": "smtp.example.com", "port": 587, "from_address": "a@example.com",
                                                 "to": ["ops@example.com"]}}


@pytest.mark.parametrize("host, port", [("169.254.169.254", 80), ("10.0.0.5", 25), ("127.0.0.1", 25),
                                        ("2130706433", 25)],
                         ids=["cloud metadata", "private", "loopback", "loopback as a number"])
def test_an_smtp_host_the_egress_rules_refuse_is_a_400(api: Any, host: str, port: int) -> None:
    response = api.post("/api/channels/", json={**MAIL, "config": {**MAIL["config"], "host": host, "port": port}})
    assert response.status_code == 400 and "refused" in response.json["fields"]["config.host"], response.json
    assert db.session.scalar(select(Channel)) is None


def test_a_login_over_no_security_is_refused_except_to_loopback_or_an_allowed_host(
        api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    login = {"security": "none", "username": "chime"}
    secrets = {"password": "a-PASSWORD-sent-in-clear"}
    refused = api.post("/api/channels/", json={**MAIL, "config": {**MAIL["config"], **login}, "secrets": secrets})
    assert refused.status_code == 400 and "in clear" in refused.json["fields"]["config.security"], refused.json
    without_login = api.post("/api/channels/", json={**MAIL, "config": {**MAIL["config"], "security": "none"}})
    assert without_login.status_code == 201, without_login.json
    monkeypatch.setenv("CHIME_EGRESS_ALLOW", "127.0.0.1/32,relay.internal.example")
    for name, host in (("loopback", "127.0.0.1"), ("localhost", "localhost"), ("listed", "relay.internal.example")):
        allowed = api.post("/api/channels/", json={**MAIL, "name": name, "config": {**MAIL["config"], **login,
                                                                                   "host": host}, "secrets": secrets})
        assert allowed.status_code == 201, (host, allowed.json)
    channel_id = without_login.json["id"]
    patched = api.patch(f"/api/channels/{channel_id}/", json={"config": {"username": "chime"}, "secrets": secrets})
    assert patched.status_code == 400 and "config.security" in patched.json["fields"]
