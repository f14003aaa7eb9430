"""Audit retention: events older than CHIME_AUDIT_RETENTION_DAYS (365 by default; 0 keeps them forever) are
pruned by the hourly retention job and by `flask prune-logs`, in batches; newer ones stay."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

import scheduler.worker
from chime.config import ConfigError, settings_from_env
from chime.extensions import db
from chime.models import AuditEvent
from scheduler.retention import prune_audit, run_prune

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=timezone.utc)


def event(created_at: datetime, name: str) -> None:
    db.session.add(AuditEvent(action="update", object_type="task", object_id="1", object_name=name,
                              actor_name="ada", source="api", created_at=created_at))
    db.session.commit()


def kept() -> list[str]:
    db.session.expire_all()
    names = list(db.session.scalars(select(AuditEvent.object_name).order_by(AuditEvent.id)))
    db.session.rollback()  # end the read: on SQLite it holds the write lock the retention job needs
    return names


def test_the_retention_is_a_year_by_default_and_zero_keeps_events_forever() -> None:
    assert settings_from_env({}, "/tmp")["AUDIT_RETENTION_DAYS"] == 365
    assert settings_from_env({"CHIME_AUDIT_RETENTION_DAYS": "90"}, "/tmp")["AUDIT_RETENTION_DAYS"] == 90
    assert settings_from_env({"CHIME_AUDIT_RETENTION_DAYS": "0"}, "/tmp")["AUDIT_RETENTION_DAYS"] == 0
    with pytest.raises(ConfigError, match="CHIME_AUDIT_RETENTION_DAYS"):
        settings_from_env({"CHIME_AUDIT_RETENTION_DAYS": "-1"}, "/tmp")


def test_prune_deletes_only_events_older_than_the_retention_in_batches(app: Any) -> None:
    for index in range(5):
        event(NOW - timedelta(days=366, hours=index), f"old-{index}")
    event(NOW - timedelta(days=364), "recent")
    event(NOW, "now")

    report = prune_audit(NOW, 365, batch_size=2)

    assert report == {"audit_events_deleted": 5, "audit_cutoff": (NOW - timedelta(days=365)).isoformat()}
    assert kept() == ["recent", "now"]
    assert prune_audit(NOW, 365)["audit_events_deleted"] == 0


def test_zero_days_keeps_every_event(app: Any) -> None:
    event(NOW - timedelta(days=3650), "ancient")

    assert prune_audit(NOW, 0) == {"audit_events_deleted": 0, "audit_cutoff": None}
    assert kept() == ["ancient"]


def test_the_hourly_job_prunes_the_trail_even_when_log_retention_is_off(app: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler.worker, "_app", app)
    now = datetime.now(timezone.utc)
    event(now - timedelta(days=10), "ten-days")
    event(now - timedelta(days=1), "yesterday")
    app.config.update(LOG_RETENTION_DAYS=0, AUDIT_RETENTION_DAYS=0)

    assert run_prune()["audit_events_deleted"] == 0
    app.config["AUDIT_RETENTION_DAYS"] = 5
    report = run_prune()

    assert report["skipped"] is True and report["audit_events_deleted"] == 1
    assert kept() == ["yesterday"]
    app.config["LOG_RETENTION_DAYS"] = 30
    assert run_prune()["audit_events_deleted"] == 0


def test_prune_logs_prunes_the_trail_by_its_own_retention(app: Any) -> None:
    now = datetime.now(timezone.utc)
    event(now - timedelta(days=400), "last-year")
    event(now - timedelta(days=40), "last-month")
    event(now - timedelta(days=1), "yesterday")
    runner = app.test_cli_runner()

    default = runner.invoke(args=["prune-logs"])  # CHIME_AUDIT_RETENTION_DAYS: 365 by default
    assert default.exit_code == 0, default.output
    assert "Deleted 1 audit event(s)" in default.output and "(365 days)" in default.output
    assert kept() == ["last-month", "yesterday"]

    forever = runner.invoke(args=["prune-logs", "--audit-days", "0"])
    assert forever.exit_code == 0 and "audit" not in forever.output
    assert kept() == ["last-month", "yesterday"]

    shorter = runner.invoke(args=["prune-logs", "--audit-days", "30", "--batch-size", "1"])
    assert shorter.exit_code == 0 and "Deleted 1 audit event(s)" in shorter.output
    assert kept() == ["yesterday"]
