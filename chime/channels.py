"""Use-cases for alert channels, shared by the API, the admin and the CLI.

Like chime.services they flush, never commit: the caller wraps them in ``with unit_of_work():``, and
every change adds its audit event (chime.audit.record) to that same transaction. The audit trail names
which secrets were set or changed, never their values. A webhook's URL is write-only like a secret
(sealed; shown as scheme://host/…): a channel saved before that keeps it in its config, shown masked,
and seals it at its next save.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, select

from chime import alert_rules, alerts, audit, channel_secrets, senders
from chime.enums import ChannelKind
from chime.errors import ConflictError, NotFoundError, ValidationError
from chime.extensions import db
from chime.models import Channel, Delivery
from chime.schemas.channel import (NOT_SET, SET, WRITE_ONLY_CONFIG, lift_write_only, read_patch, secret_names,
                                   shown_config, shown_url, validated_channel)
from chime.timeutil import utcnow
from jobs import egress


def channel_query() -> Select[tuple[Channel]]:
    return select(Channel).order_by(Channel.name)


def list_channels() -> list[Channel]:
    return list(db.session.scalars(channel_query()))


def get_channel(channel_id: int) -> Channel:
    channel = db.session.get(Channel, channel_id)
    if channel is None:
        raise NotFoundError("channel", channel_id)
    return channel


def secrets_status(channel: Channel) -> dict[str, str]:
    """Each secret of the channel's kind: "set" or "not set" (what the API and the admin show)."""
    kind = ChannelKind(channel.kind)
    stored = set(channel.secret_names or []) | {  # a URL saved before it was sealed is in the config
        name for name in WRITE_ONLY_CONFIG.get(kind, ()) if (channel.config or {}).get(name)}
    return {name: SET if name in stored else NOT_SET for name in secret_names(kind)}


def shown(channel: Channel) -> dict[str, Any]:
    """The channel's config as everything shows it (API, admin, CLI, audit): a webhook URL masked."""
    return shown_config(ChannelKind(channel.kind), channel.config or {})


def channel_view(channel: Channel) -> dict[str, Any]:
    """The channel as the API shows it (ChannelRead): its secrets only as set / not set."""
    return {"id": channel.id, "name": channel.name, "kind": channel.kind, "enabled": channel.enabled,
            "muted_until": channel.muted_until, "config": shown(channel), "secrets": secrets_status(channel),
            "created_at": channel.created_at, "updated_at": channel.updated_at}


def audit_fields(channel: Channel) -> dict[str, Any]:
    return {"name": channel.name, "kind": ChannelKind(channel.kind).value, "enabled": channel.enabled,
            "muted_until": channel.muted_until.isoformat() if channel.muted_until else None,
            "config": shown(channel),
            "write_only_set": sorted(name for name, state in secrets_status(channel).items() if state == SET)}


def create_channel(payload: Any) -> Channel:
    """Create a channel from {name, kind, enabled?, muted_until?, config, secrets}; 409 when the name is taken."""
    if not isinstance(payload, Mapping):
        raise ValidationError({"body": "must be a JSON object"})
    data, config, secrets = validated_channel(payload)
    _require_login_password(config, secrets.model_dump(exclude_none=True))
    _refuse_cleartext_login(config)
    _name_is_free(data.name)
    kept = secrets.model_dump(exclude_none=True)
    channel = Channel(name=data.name, kind=data.kind, enabled=data.enabled, muted_until=data.muted_until,
                      config={**config.model_dump(mode="json"), **_shown_write_only(data.kind, kept, {})},
                      secrets=channel_secrets.seal(kept), secret_names=sorted(kept))
    db.session.add(channel)
    db.session.flush()
    audit.record("create", "channel", channel.id, channel.name, after=audit_fields(channel))
    return channel


def update_channel(channel: Channel, payload: Any) -> Channel:
    """Apply a ChannelPatch: config keys given replace theirs (null removes one); a secret given replaces
    the stored one, "" keeps it, null removes it. The whole result is validated as a new channel would be."""
    patch = read_patch(payload)
    given = patch.model_fields_set
    kind = ChannelKind(channel.kind)
    before = audit_fields(channel)
    patch_config, typed_urls = lift_write_only(kind, patch.config or {})
    changes = {key: value for key, value in {**(patch.secrets or {}), **typed_urls}.items() if value != ""}
    stored_config, unsealed = _stored_config(channel)
    rewrite = bool(changes or unsealed)  # a URL saved before URLs were sealed is sealed now
    secrets = _merged({**_stored_secrets(channel), **unsealed} if rewrite else {}, changes)
    config = _merged(stored_config, patch_config)
    values = {"name": patch.name if "name" in given and patch.name is not None else channel.name,
              "kind": channel.kind, "enabled": channel.enabled if patch.enabled is None else patch.enabled,
              "muted_until": patch.muted_until if "muted_until" in given else channel.muted_until,
              "config": config, "secrets": secrets if rewrite else {}}
    data, parsed_config, parsed_secrets = _validated_update(values, channel, rewrite)
    if data.name != channel.name:
        _name_is_free(data.name)
    kept = parsed_secrets.model_dump(exclude_none=True) if rewrite else None
    _require_login_password(parsed_config, kept if kept is not None else dict.fromkeys(channel.secret_names or [], "set"))
    _refuse_cleartext_login(parsed_config)
    channel.name, channel.enabled, channel.muted_until = data.name, data.enabled, data.muted_until
    channel.config = {**parsed_config.model_dump(mode="json"),
                      **_shown_write_only(kind, kept, {} if kept is not None else channel.config or {})}
    if kept is not None:
        channel.secrets, channel.secret_names = channel_secrets.seal(kept), sorted(kept)
    channel.updated_at = utcnow()
    db.session.flush()
    old, new = audit.changed_fields(before, audit_fields(channel))
    details = {"write_only_changed": sorted(changes)} if changes else None
    if old or new or details:
        audit.record("update", "channel", channel.id, channel.name, before=old, after=new, details=details)
    return channel


def _validated_update(values: dict[str, Any], channel: Channel, secrets_changed: bool) -> Any:
    """Validate the merged channel; when no secret changes, the stored ones (valid when saved) stand."""
    return validated_channel(values, check_secrets=secrets_changed)


def _stored_config(channel: Channel) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the stored config without what only shows a write-only value, the write-only values a channel
    saved before they were sealed still keeps in its config)."""
    config, unsealed = dict(channel.config or {}), {}
    for name in WRITE_ONLY_CONFIG.get(ChannelKind(channel.kind), ()):
        value = config.pop(name, None)
        if value and name not in (channel.secret_names or []):
            unsealed[name] = value
    return config, unsealed


def _shown_write_only(kind: ChannelKind, kept: Mapping[str, Any] | None, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The config entries that show the write-only values: from the values being sealed, else as stored."""
    shown_values: dict[str, Any] = {}
    for name in WRITE_ONLY_CONFIG.get(kind, ()):
        value = (kept or {}).get(name) or stored.get(name)
        if value:
            shown_values[name] = shown_url(str(value))
    return shown_values


def _refuse_cleartext_login(config: Any) -> None:
    """A login over `security: none` sends the password in clear: only to loopback or an allowed host."""
    if not (getattr(config, "username", None) and getattr(config, "security", None) == "none"):
        return
    host = str(config.host)
    try:
        allow = egress.allow_list_from_env()
    except ValueError as error:
        raise ValidationError({"config.host": str(error)}) from None
    literal = egress.literal_address(host)
    addresses = ((literal,) if literal is not None else
                 (ipaddress.ip_address("127.0.0.1"),) if host.lower().rstrip(".") == "localhost" else ())
    if not senders.cleartext_login_allowed(host, addresses, allow):
        raise ValidationError({"config.security": senders.CLEARTEXT_LOGIN})


def _stored_secrets(channel: Channel) -> dict[str, Any]:
    try:
        return channel_secrets.unseal(channel.secrets)
    except channel_secrets.SecretsKeyError as error:
        raise ValidationError({"secrets": str(error)}, str(error)) from None


def _merged(current: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _require_login_password(config: Any, secrets: Mapping[str, Any]) -> None:
    if getattr(config, "username", None) and not secrets.get("password"):
        raise ValidationError({"secrets.password": "is required when config.username is set"})


def _name_is_free(name: str) -> None:
    if db.session.scalar(select(Channel.id).where(Channel.name == name)) is not None:
        raise ConflictError(f"A channel named {name!r} already exists", {"name": "already taken"})


def delete_channel(channel: Channel) -> None:
    """Delete a channel; its deliveries stay (with its name) for the record, and the rules that named it
    forget it (chime.alert_rules.forget_channel)."""
    audit.record("delete", "channel", channel.id, channel.name, before=audit_fields(channel))
    alert_rules.forget_channel(channel.id)
    db.session.delete(channel)
    db.session.flush()


def send_test(channel: Channel) -> Delivery:
    """Queue a test alert to the channel (even disabled or muted); audited as a "test" action."""
    delivery = alerts.enqueue_delivery(channel, {
        "event": alerts.TEST_EVENT, "title": f"Test alert from Chime to {channel.name}",
        "message": "If you can read this, the channel works.",
    }, force=True)
    assert delivery is not None  # force: never muted
    audit.record("test", "channel", channel.id, channel.name, details={"delivery_id": delivery.delivery_id})
    return delivery


def delivery_query(channel_id: int | None = None, task_id: int | None = None) -> Select[tuple[Delivery]]:
    """Deliveries, newest first, of one channel and/or one task."""
    query = select(Delivery).order_by(Delivery.id.desc())
    if channel_id is not None:
        query = query.where(Delivery.channel_id == channel_id)
    if task_id is not None:
        query = query.where(Delivery.task_id == task_id)
    return query
