"""Set-up shared by the fault tests that follow alerts out of the engine's real processes."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from cryptography.fernet import Fernet

from chime import channels
from chime.extensions import db
from chime.models import AlertRule
from chime.unit_of_work import unit_of_work
from tests.engine_fixtures import Engine


def default_rule_to_webhook(engine: Engine, engine_app: Any, monkeypatch: pytest.MonkeyPatch, url: str, secret: str,
                            events: Sequence[str], **rule: Any) -> None:
    """A webhook channel at `url` (on loopback, so the egress rules must allow it) signed with `secret`, a default
    rule sending `events` to it, and the environment the engine's processes need to send: the secrets key
    this test sealed the channel with and loopback allowed."""
    secrets_key = Fernet.generate_key().decode()
    monkeypatch.setenv("CHIME_EGRESS_ALLOW", "127.0.0.1/32")
    engine_app.config["SECRETS_KEY"] = secrets_key
    with unit_of_work():
        channel = channels.create_channel({"name": "ops", "kind": "webhook", "config": {"url": url},
                                           "secrets": {"secret": secret}})
        db.session.flush()
        db.session.add(AlertRule(task_id=None, events=list(events), channel_ids=[channel.id], **rule))
    db.session.rollback()
    engine.env.update(CHIME_SECRETS_KEY=secrets_key, CHIME_EGRESS_ALLOW="127.0.0.1/32")
