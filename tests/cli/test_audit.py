"""The audit trail from the command line: every command runs as the CLI actor (cli:<login>), so a change
made there is recorded like one from the API or the admin; import leaves one event per task it changed."""
from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from chime import services
from chime.audit import current_actor
from chime.enums import Role
from chime.extensions import db
from chime.models import AuditEvent
from chime.unit_of_work import unit_of_work
from webapp.auth import create_user

INTERVAL = {"job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL", "interval_seconds": 60}
CLI_ACTOR = f"cli:{getpass.getuser()}"


def make(name: str) -> int:
    with unit_of_work():
        return services.create_task({"name": name, **INTERVAL}, allow_shell=False).id


def ok(app: Any, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def events_since(first_id: int = 0) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.id > first_id).order_by(AuditEvent.id)))


def last_id() -> int:
    return max((event.id for event in events_since()), default=0)


def test_disabling_a_task_from_the_cli_leaves_one_event_as_the_cli(app: Any) -> None:
    task_id = make("ping")
    start = last_id()

    ok(app, "tasks", "disable", str(task_id))

    [event] = events_since(start)
    assert (event.action, event.object_type, event.object_id, event.object_name) == ("disable", "task",
                                                                                    str(task_id), "ping")
    assert (event.actor_name, event.source, event.actor_id, event.remote_addr) == (CLI_ACTOR, "cli", None, None)
    assert (event.before, event.after) == ({"enabled": True}, {"enabled": False})


def test_a_task_created_outside_any_edge_is_recorded_as_the_engine(app: Any) -> None:
    make("ping")

    [event] = events_since()

    assert (event.action, event.actor_name, event.source) == ("create", "chime", "engine")


def test_import_records_one_event_per_created_or_updated_task_and_none_for_a_dry_run(app: Any,
                                                                                     tmp_path: Path) -> None:
    make("changed")
    make("same")
    document = json.loads(ok(app, "export"))
    document["tasks"][0]["interval_seconds"] = 300
    document["tasks"].append({"name": "brand-new", **INTERVAL})
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(document))
    start = last_id()

    ok(app, "import", "--update", "--dry-run", str(path))
    assert events_since(start) == []
    ok(app, "import", "--update", str(path))

    trail = events_since(start)
    assert [(e.action, e.object_name) for e in trail] == [("update", "changed"), ("create", "brand-new")]
    assert {(e.actor_name, e.source) for e in trail} == {(CLI_ACTOR, "cli")}
    assert all(e.details == {"via": "import"} for e in trail)
    assert (trail[0].before, trail[0].after) == ({"interval_seconds": 60}, {"interval_seconds": 300})


def test_an_import_that_fails_leaves_no_event(app: Any, tmp_path: Path) -> None:
    make("taken")
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps({"version": 1, "tasks": [{"name": "fresh", **INTERVAL}, {"name": "taken", **INTERVAL}]}))
    start = last_id()

    result = app.test_cli_runner().invoke(args=["import", str(path)])

    assert result.exit_code == 1
    assert events_since(start) == []


def test_the_user_commands_are_recorded_as_the_cli_without_the_password(app: Any) -> None:
    create_user("bob", "a long enough password", role=Role.OPERATOR)
    start = last_id()

    ok(app, "users", "disable", "bob")
    ok(app, "users", "enable", "bob")
    ok(app, "users", "set-password", "bob", "--password", "another long password")

    trail = events_since(start)
    assert [(e.action, e.object_type, e.object_name) for e in trail] == [
        ("deactivate", "user", "bob"), ("activate", "user", "bob"), ("password_change", "user", "bob")]
    assert {(e.actor_name, e.source) for e in trail} == {(CLI_ACTOR, "cli")}
    assert "another long password" not in repr([(e.before, e.after, e.details) for e in trail])


def test_a_command_added_after_start_up_runs_as_the_cli_actor_too(app: Any) -> None:
    seen = []
    group = click.Group("extra")

    @group.command("who")
    def who() -> None:
        seen.append(current_actor())

    app.cli.add_command(group)
    ok(app, "extra", "who")

    [actor] = seen
    assert (actor.name, actor.source, actor.role) == (CLI_ACTOR, "cli", "admin")
    assert current_actor().source == "engine"  # only while the command runs
