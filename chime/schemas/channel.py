"""The Channel resource, declared once: what a client writes (API, admin form, CLI) and what it reads back.

A channel is a kind plus two sets of settings: `config` (shown) and `secrets` (write-only: stored
encrypted, shown only as "set" / "not set"). Each kind declares both as a model below; the one
validation path is :func:`validated_channel`, which checks the whole channel as it would be stored
(for an update: the current settings with the changes merged in, a blank secret keeping the old one).

A webhook's URL is written as `config.url` but kept with the secrets (it often embeds a token:
``?token=...``, ``/hooks/<id>/<token>``): it is sealed, and the config shows only ``scheme://host/…``
(:func:`shown_url`). Channels saved before keep the full URL in their config until their next save;
everything that shows a config masks it (chime.channels.channel_view).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from chime.enums import ChannelKind, DeliveryStatus
from chime.errors import ValidationError
from chime.schemas.common import AwareInstant, Instant, Sent, field_errors, storable, stripped
from jobs import egress

MAX_NAME_LENGTH_CHARS = 200
MAX_URL_LENGTH_CHARS = 2000
MAX_SECRET_LENGTH_CHARS = 1000
MAX_RECIPIENTS = 50
MAX_HOST_LENGTH_CHARS = 253
DEFAULT_SMTP_TIMEOUT_SECONDS = 30
MAX_SMTP_TIMEOUT_SECONDS = 300
ADDRESS_CHARS = "must be an e-mail address such as ops@example.com"
SET, NOT_SET = "set", "not set"


class Received(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- field types


def _http_url(value: str) -> str:
    """An absolute http(s) URL the egress rules allow (what is known without DNS: a literal address)."""
    if any(char.isspace() or ord(char) < 0x21 or ord(char) > 0x7E for char in value):
        raise ValueError("must be a URL without spaces, control or non-ASCII characters (percent-encode them)")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for an invalid port
    except ValueError:
        raise ValueError("must be a valid URL") from None
    if parts.scheme.lower() not in egress.HTTP_SCHEMES or not parts.hostname:
        raise ValueError("must be an http or https URL with a host")
    try:
        refused = egress.url_refusal(value, egress.allow_list_from_env())
    except ValueError as error:  # CHIME_EGRESS_ALLOW is malformed
        raise ValueError(str(error)) from None
    if refused:
        raise ValueError(refused.replace(value, "the URL"))
    return value


def _no_credentials(value: str) -> str:
    if urlsplit(value).username is not None:
        raise ValueError("must not carry a user or password (it would be shown): use the signing secret")
    return value


def _address(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() or c in "<>,;\"" for c in value):
        raise ValueError(ADDRESS_CHARS)
    return value


def _host(value: str) -> str:
    """A host name or IPv4 address; a literal address the egress rules refuse is refused (a name is vetted
    after resolving it, at every send)."""
    if not value or any(c.isspace() or c in "/@:" for c in value) or len(value) > MAX_HOST_LENGTH_CHARS:
        raise ValueError("must be a host name or address, such as smtp.example.com")
    address = egress.literal_address(value)
    if address is not None:
        try:
            refused = egress.refusal(address, egress.allow_list_from_env(), value)
        except ValueError as error:  # CHIME_EGRESS_ALLOW is malformed
            raise ValueError(str(error)) from None
        if refused:
            raise ValueError(refused)
    return value


def shown_url(url: str) -> str:
    """What is shown of a write-only URL: its scheme, host and port (``https://hooks.example.com/…``)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "…"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{host}{f':{port}' if port else ''}/…"


Name = Annotated[str, BeforeValidator(stripped), Field(strict=True, min_length=1, max_length=MAX_NAME_LENGTH_CHARS),
                 AfterValidator(storable)]
HttpUrl = Annotated[str, BeforeValidator(stripped), Field(strict=True, max_length=MAX_URL_LENGTH_CHARS),
                    AfterValidator(_http_url)]
Address = Annotated[str, BeforeValidator(stripped), Field(strict=True, max_length=320), AfterValidator(_address)]
Secret = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_SECRET_LENGTH_CHARS), AfterValidator(storable)]


# --------------------------------------------------------------------------- each kind's settings


WebhookUrl = Annotated[HttpUrl, AfterValidator(_no_credentials)]


class WebhookConfig(Received):
    pass  # its `url` is written in config but kept with the secrets (lift_write_only)


class WebhookSecrets(Received):
    secret: Secret = Field(description="The HMAC-SHA256 key of X-Chime-Signature (write-only)")
    url: WebhookUrl = Field(description="Where the signed JSON event is POSTed (the egress rules of http_request "
                                        "apply); written as config.url, kept sealed, shown as scheme://host/…")


class SlackConfig(Received):
    pass


class SlackSecrets(Received):
    url: HttpUrl = Field(description="The incoming-webhook URL (it embeds a token: write-only)")


class EmailConfig(Received):
    host: Annotated[str, BeforeValidator(stripped), AfterValidator(_host)] = Field(description="The SMTP server")
    port: int = Field(587, ge=1, le=65535, description="587 for STARTTLS, 465 for implicit TLS, 25 for a local relay")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (upgrade the connection), tls (implicit TLS) or none (a local relay only)")
    username: Annotated[str, AfterValidator(storable)] | None = Field(
        None, max_length=320, description="Log in as this user (with the password secret); none: no login")
    from_address: Address = Field(description="The sender (From:)")
    to: list[Address] = Field(min_length=1, max_length=MAX_RECIPIENTS, description="The recipients")
    timeout_seconds: int = Field(DEFAULT_SMTP_TIMEOUT_SECONDS, ge=1, le=MAX_SMTP_TIMEOUT_SECONDS,
                                 description="How long one step (connect, one reply) may take; the whole attempt "
                                             "stops at CHIME_ALERT_ATTEMPT_DEADLINE_SECONDS (30) anyway")


class EmailSecrets(Received):
    password: Secret | None = Field(None, description="The SMTP login's password (write-only)")


KINDS: dict[ChannelKind, tuple[type[Received], type[Received]]] = {
    ChannelKind.WEBHOOK: (WebhookConfig, WebhookSecrets),
    ChannelKind.EMAIL: (EmailConfig, EmailSecrets),
    ChannelKind.SLACK: (SlackConfig, SlackSecrets),
}


WRITE_ONLY_CONFIG: dict[ChannelKind, tuple[str, ...]] = {ChannelKind.WEBHOOK: ("url",)}  # written in config, kept sealed


def secret_names(kind: ChannelKind) -> tuple[str, ...]:
    return tuple(KINDS[kind][1].model_fields)


def lift_write_only(kind: ChannelKind, config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a config as written into (what is shown, what is kept sealed): a webhook's `url` is sealed."""
    shown, sealed = dict(config), {}
    for name in WRITE_ONLY_CONFIG.get(kind, ()):
        if name in shown:
            sealed[name] = shown.pop(name)
    return shown, sealed


def shown_config(kind: ChannelKind, config: Mapping[str, Any]) -> dict[str, Any]:
    """A stored config as shown: a write-only URL (sealed, or in the config of a channel saved before it
    was) only as scheme://host/…."""
    shown = dict(config)
    for name in WRITE_ONLY_CONFIG.get(kind, ()):
        if isinstance(shown.get(name), str):
            shown[name] = shown_url(shown[name])
    return shown


# --------------------------------------------------------------------------- the channel


class ChannelInput(Received):
    """A new channel."""

    name: Name = Field(description="Unique; how rules and the admin name it")
    kind: ChannelKind = Field(description="webhook, email or slack")
    enabled: bool = Field(True, description="A disabled channel is sent nothing")
    muted_until: AwareInstant | None = Field(None, description="Send nothing until then (ISO 8601 with an offset)")
    config: dict[str, Any] = Field(default_factory=dict, description=(
        "The kind's settings. webhook: {url} (write-only: kept sealed with the secrets, shown as "
        "scheme://host/…); email: {host, port, security, username, from_address, to, timeout_seconds}; slack: {}"))
    secrets: dict[str, Any] = Field(default_factory=dict, description=(
        "The kind's secrets (write-only). webhook: {secret}; email: {password}; slack: {url}"))


class ChannelPatch(Received):
    """What may change of a channel: config keys given replace theirs; a secret given (not blank) replaces
    the stored one, a blank or absent one keeps it, null removes it. The kind cannot change."""

    name: Name | None = None
    enabled: bool | None = None
    muted_until: AwareInstant | None = None
    config: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None


class ChannelRead(Sent):
    id: int = Field(ge=1)
    name: str
    kind: ChannelKind
    enabled: bool
    muted_until: Instant | None
    config: dict[str, Any]
    secrets: dict[str, Literal["set", "not set"]] = Field(description="Each secret of the kind: set or not (never "
                                                                      "its value)")
    created_at: Instant
    updated_at: Instant


class DeliveryAttemptRead(Sent):
    attempt: int = Field(ge=1)
    attempted_at: Instant
    ok: bool
    response_status: int | None = Field(description="The HTTP status, or the SMTP reply code")
    reply: str | None = Field(description="The SMTP server's reply text")
    error: str | None
    duration_ms: int | None


class DeliveryRead(Sent):
    id: int = Field(ge=1)
    delivery_id: str = Field(description="X-Chime-Delivery: the same on every attempt")
    channel_id: int | None
    channel_name: str
    event: str
    task_id: int | None
    execution_id: int | None
    status: DeliveryStatus
    attempts: int = Field(ge=0)
    last_attempt_at: Instant | None
    next_attempt_at: Instant | None = Field(description="When a pending delivery is tried next")
    response_status: int | None = Field(description="The last HTTP status, or SMTP reply code")
    error: str | None = Field(description="Why the last attempt failed (never a secret)")
    payload: dict[str, Any] = Field(description="The event as sent")
    created_at: Instant
    attempt_log: list[DeliveryAttemptRead] = Field(description="Every attempt, oldest first")


class ChannelTestResult(Sent):
    delivery: DeliveryRead = Field(description="The test delivery, queued on the alerts queue")


# --------------------------------------------------------------------------- use


def validated_channel(values: Mapping[str, Any], *, check_secrets: bool = True
                      ) -> tuple[ChannelInput, Received, Received | None]:
    """Validate a whole channel (name, kind, ..., config, secrets): return it with its config and secrets
    read as its kind's models, or a ValidationError naming every bad field (``config.url``...).
    Without `check_secrets` (an update that changes none) the secrets are not read (None)."""
    try:
        channel = ChannelInput.model_validate(dict(values))
    except pydantic.ValidationError as error:
        raise ValidationError(field_errors(error)) from None
    config_model, secrets_model = KINDS[channel.kind]
    config, lifted = lift_write_only(channel.kind, channel.config)
    fields: dict[str, str] = {}
    checks = [("config", config_model, config), ("secrets", secrets_model, {**channel.secrets, **lifted})]
    parsed: list[Received | None] = []
    for prefix, model, data in checks[:2 if check_secrets else 1]:
        try:
            parsed.append(model.model_validate(data))
        except pydantic.ValidationError as error:
            fields.update(field_errors(error, prefix))
    if fields:
        moved = {f"secrets.{name}": f"config.{name}" for name in WRITE_ONLY_CONFIG.get(channel.kind, ())}
        raise ValidationError({moved.get(name, name): reason for name, reason in fields.items()})
    config = parsed[0]
    assert config is not None
    return channel, config, parsed[1] if check_secrets else None


def read_patch(payload: Any) -> ChannelPatch:
    if not isinstance(payload, Mapping):
        raise ValidationError({"body": "must be a JSON object"})
    try:
        return ChannelPatch.model_validate(dict(payload))
    except pydantic.ValidationError as error:
        raise ValidationError(field_errors(error)) from None
