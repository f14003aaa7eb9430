"""Channel secrets, sealed: Fernet (AES-128-CBC + HMAC-SHA256, authenticated) with a key from the environment.

CHIME_SECRETS_KEY is a Fernet key (``python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"``); `make run` generates one into the instance folder. Without
it a channel's secrets cannot be saved (a 400 saying so) nor read (a delivery fails saying so). The
secrets are only ever opened to send an alert: nothing else reads them back.
"""
from __future__ import annotations

import json
import os
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, has_app_context

from chime.errors import ValidationError

KEY_ENV = "CHIME_SECRETS_KEY"
CONFIG_KEY = "SECRETS_KEY"  # the app's config may carry it (tests); else the environment
MISSING_KEY = (f"{KEY_ENV} is not set: channel secrets cannot be stored. Set it to a Fernet key "
               "(`make run` generates one into the instance folder)")


class SecretsKeyError(RuntimeError):
    """The key is missing or malformed, or the stored secrets were sealed with another key."""


def _key() -> str:
    configured = current_app.config.get(CONFIG_KEY) if has_app_context() else None
    return (configured or os.environ.get(KEY_ENV, "")).strip()


def _fernet() -> Fernet:
    key = _key()
    if not key:
        raise SecretsKeyError(MISSING_KEY)
    try:
        return Fernet(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise SecretsKeyError(f"{KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes)") from None


def seal(values: dict[str, Any]) -> str | None:
    """The sealed form of `values` (None when there is nothing to keep); a 400 when no key is set."""
    kept = {name: value for name, value in values.items() if value not in (None, "")}
    if not kept:
        return None
    try:
        fernet = _fernet()
    except SecretsKeyError as error:
        raise ValidationError({"secrets": str(error)}, str(error)) from None
    return fernet.encrypt(json.dumps(kept, sort_keys=True).encode("utf-8")).decode("ascii")


def unseal(sealed: str | None) -> dict[str, Any]:
    """The secret settings `sealed` holds ({} for None); SecretsKeyError when they cannot be read."""
    if not sealed:
        return {}
    try:
        return dict(json.loads(_fernet().decrypt(sealed.encode("ascii"))))
    except InvalidToken:
        raise SecretsKeyError(f"the channel's secrets were stored with another {KEY_ENV}: save them again") from None
