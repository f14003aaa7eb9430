"""`flask channels` and `flask alerts` (and `flask tasks mute`): alerting provisioned and inspected from the
command line through the same use-cases and schemas as the API, as the CLI actor (audited as cli:<login>).
Bad input prints the API's message, exits non-zero and changes nothing; a secret is never printed."""
from __future__ import annotations

import getpass
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from chime import rules, services
from chime.enums import DeliveryStatus
from chime.extensions import db
from chime.models import AlertRule, AuditEvent, Channel, Delivery, DeliveryAttempt, Task
from chime.unit_of_work import unit_of_work

CLI_ACTOR = f"cli:{getpass.getuser()}"
SECRET = "s3cr3t-signing-VALUE-9f8e7d"  # a secret-looking string: it must never be printed
URL_TOKEN = "TOKENtokenTOKEN1234"
HOOK_URL = f"https://hooks.example.com/chime?token={URL_TOKEN}"
INTERVAL = {"job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL", "interval_seconds": 60}


@pytest.fixture(autouse=True)
def secrets_key(app: Any) -> None:
    app.config["SECRETS_KEY"] = Fernet.generate_key().decode()


def cli(app: Any, *args: str, stdin: str | None = None) -> Any:
    return app.test_cli_runner().invoke(args=list(args), input=stdin)


def ok(app: Any, *args: str, stdin: str | None = None) -> str:
    result = cli(app, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def counts() -> dict[str, int]:
    """How many rows each alerting table (and the audit trail) holds, read afresh."""
    db.session.expire_all()
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Channel, AlertRule, Delivery, AuditEvent)}


def audit_events(object_type: str) -> list[tuple[str, str, str]]:
    db.session.expire_all()
    return [(e.action, e.actor_name, e.source) for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == object_type).order_by(AuditEvent.id))]


def make_task(name: str = "nightly") -> int:
    with unit_of_work():
        return services.create_task({"name": name, **INTERVAL}, allow_shell=False).id


def make_channel(app: Any, name: str = "ops-hook") -> int:
    ok(app, "channels", "create", "--name", name, "--kind", "webhook", "--config", json.dumps({"url": HOOK_URL}),
       "--secrets", json.dumps({"secret": SECRET}))
    db.session.expire_all()
    return db.session.scalar(select(Channel.id).where(Channel.name == name))


def assert_refused(app: Any, args: list[str], message: str, stdin: str | None = None) -> None:
    """The command fails with `message`, exit code non-zero, no secret printed, and nothing changed."""
    before = counts()
    result = cli(app, *args, stdin=stdin)
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert SECRET not in result.output and URL_TOKEN not in result.output
    assert counts() == before


# -- channels ---------------------------------------------------------------------------------------------------

def test_a_webhook_channel_is_created_sealed_shown_as_list_shows_it_and_audited_as_the_cli(app: Any) -> None:
    output = ok(app, "channels", "create", "--name", "ops-hook", "--kind", "webhook",
                "--config", json.dumps({"url": HOOK_URL}), "--secrets", json.dumps({"secret": SECRET}))

    header, row = output.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "KIND"]
    assert "ops-hook" in row and "webhook" in row and "secret set, url set" in row
    assert SECRET not in output and URL_TOKEN not in output
    assert output == ok(app, "channels", "list")
    channel = db.session.scalar(select(Channel))
    assert SECRET not in (channel.secrets or "") and URL_TOKEN not in json.dumps(channel.config)
    assert channel.config == {"url": "https://hooks.example.com/…"}
    assert audit_events("channel") == [("create", CLI_ACTOR, "cli")]


def test_secrets_and_config_can_come_from_a_file_and_stdin_and_json_shows_them_masked(app: Any,
                                                                                      tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"host": "smtp.example.com", "port": 465, "security": "tls", "username": "chime",
                                  "from_address": "chime@example.com", "to": ["ops@example.com"]}))

    output = ok(app, "channels", "create", "--name", "mail", "--kind", "email", "--config", f"@{config}",
                "--secrets", "@-", "--json", stdin=json.dumps({"password": SECRET}))

    shown = json.loads(output)
    assert [(c["name"], c["kind"], c["secrets"]) for c in shown] == [("mail", "email", {"password": "set"})]
    assert shown[0]["config"]["host"] == "smtp.example.com" and SECRET not in output


@pytest.mark.parametrize("args, message", [
    (["--kind", "webhook", "--config", '{"url": "http://127.0.0.1:9/hook"}', "--secrets", f'{{"secret": "{SECRET}"}}'],
     "config.url"),
    (["--kind", "webhook", "--config", json.dumps({"url": HOOK_URL})], "secrets.secret: is required"),
    (["--kind", "slack", "--secrets", '{"url": "http://10.0.0.5/hook"}'], "secrets.url"),
    (["--kind", "email", "--config", '{"host": "smtp.example.com", "from_address": "nope", "to": ["a@example.com"]}'],
     "config.from_address"),
    (["--kind", "webhook", "--config", json.dumps({"url": HOOK_URL}), "--secrets", f'{{"secret": "{SECRET}", "x": 1}}'],
     "secrets.x: unknown field"),
    (["--kind", "webhook", "--config", "[1, 2]", "--secrets", f'{{"secret": "{SECRET}"}}'], "config"),
    (["--kind", "webhook", "--config", json.dumps({"url": HOOK_URL}), "--secrets", f'{{"secret": "{SECRET}"'],
     "--secrets"),
    (["--kind", "pager"], "'pager' is not one of"),
    (["--kind", "webhook", "--config", "@/no/such/file.json"], "cannot read"),
], ids=["url refused by egress", "missing secret", "slack url to a private address", "malformed sender",
        "unknown secret", "config not an object", "secrets not JSON", "unknown kind", "missing file"])
def test_a_bad_channel_is_refused_with_the_apis_message_and_nothing_changes(app: Any, args: list[str],
                                                                            message: str) -> None:
    assert_refused(app, ["channels", "create", "--name", "hook", *args], message)


def test_a_taken_name_is_refused_and_nothing_changes(app: Any) -> None:
    make_channel(app, "ops-hook")
    assert_refused(app, ["channels", "create", "--name", "ops-hook", "--kind", "webhook", "--config",
                         json.dumps({"url": HOOK_URL}), "--secrets", json.dumps({"secret": SECRET})],
                   "A channel named 'ops-hook' already exists")


def test_a_channel_is_muted_until_an_instant_then_unmuted_as_the_cli(app: Any) -> None:
    channel_id = make_channel(app)

    muted = ok(app, "channels", "mute", str(channel_id), "--until", "2031-06-01T09:00:00+02:00")

    assert muted.splitlines()[1].split()[-1] == "2031-06-01T07:00:00+00:00"
    db.session.expire_all()
    assert db.session.get(Channel, channel_id).muted_until == datetime(2031, 6, 1, 7, tzinfo=timezone.utc)
    ok(app, "channels", "mute", str(channel_id), "--clear")
    db.session.expire_all()
    assert db.session.get(Channel, channel_id).muted_until is None
    assert audit_events("channel") == [("create", CLI_ACTOR, "cli"), ("update", CLI_ACTOR, "cli"),
                                       ("update", CLI_ACTOR, "cli")]


@pytest.mark.parametrize("args, message", [
    (["--until", "2031-06-01T09:00:00"], "muted_until"),
    (["--until", "next tuesday"], "muted_until"),
    ([], "Give either --until ISO or --clear"),
    (["--until", "2031-06-01T09:00:00Z", "--clear"], "Give either --until ISO or --clear"),
], ids=["no offset", "not a time", "neither", "both"])
def test_a_bad_channel_mute_is_refused_and_nothing_changes(app: Any, args: list[str], message: str) -> None:
    channel_id = make_channel(app)
    assert_refused(app, ["channels", "mute", str(channel_id), *args], message)
    assert db.session.get(Channel, channel_id).muted_until is None


def test_a_channel_is_deleted_as_the_cli_and_an_unknown_one_is_refused(app: Any) -> None:
    channel_id = make_channel(app)
    assert_refused(app, ["channels", "delete", str(channel_id + 1)], f"No channel with id {channel_id + 1} was found")
    assert_refused(app, ["channels", "mute", "0", "--clear"], "No channel with id 0 was found")

    assert "Deleted channel" in ok(app, "channels", "delete", str(channel_id))

    assert counts()["Channel"] == 0
    assert audit_events("channel") == [("create", CLI_ACTOR, "cli"), ("delete", CLI_ACTOR, "cli")]


# -- deliveries -------------------------------------------------------------------------------------------------

def add_delivery(channel_id: int, task_id: int | None, status: DeliveryStatus,
                 attempts: list[dict[str, Any]]) -> str:
    with unit_of_work():
        channel = db.session.get(Channel, channel_id)
        delivery = Delivery(delivery_id=f"d-{channel.name}-{status.value}-{task_id}", channel_id=channel_id,
                            channel_name=channel.name, event="failed", task_id=task_id, status=status,
                            attempts=len(attempts), payload={"event": "failed"},
                            created_at=datetime(2031, 1, 1, tzinfo=timezone.utc))
        delivery.attempt_log = [DeliveryAttempt(attempt=n, ok=a.get("ok", False),
                                                attempted_at=datetime(2031, 1, 1, 0, n, tzinfo=timezone.utc),
                                                response_status=a.get("status"), reply=a.get("reply"),
                                                error=a.get("error")) for n, a in enumerate(attempts, 1)]
        db.session.add(delivery)
    return delivery.delivery_id


def make_mail_channel(app: Any) -> int:
    config = {"host": "smtp.example.com", "from_address": "chime@example.com", "to": ["ops@example.com"]}
    ok(app, "channels", "create", "--name", "mail", "--kind", "email", "--config", json.dumps(config))
    return db.session.scalar(select(Channel.id).where(Channel.name == "mail"))


@pytest.fixture
def deliveries(app: Any) -> dict[str, Any]:
    hook, mail, task_id = make_channel(app, "hook"), make_mail_channel(app), make_task()
    retried = [{"status": 503, "error": "HTTP 503 from the receiver"}, {"ok": True, "status": 200}]
    refused = [{"status": 535, "reply": "5.7.8 Authentication failed", "error": "login refused"}]
    return {"hook": hook, "mail": mail, "task": task_id,
            "retried": add_delivery(hook, task_id, DeliveryStatus.DELIVERED, retried),
            "refused": add_delivery(mail, None, DeliveryStatus.FAILED, refused),
            "waiting": add_delivery(mail, task_id, DeliveryStatus.PENDING, [])}


def test_deliveries_are_listed_with_every_attempt_newest_first(app: Any, deliveries: dict[str, Any]) -> None:
    lines = ok(app, "alerts", "deliveries").splitlines()

    assert lines[0].split()[:3] == ["DELIVERY", "STATUS", "CHANNEL"]
    body = [line.split() for line in lines[1:]]
    assert [row[0] for row in body] == [deliveries["waiting"], deliveries["refused"], deliveries["retried"],
                                        deliveries["retried"]]
    assert body[0][1:] == ["pending", "mail", "failed", "1", "-", "2031-01-01T00:00:00+00:00", "not", "tried", "-",
                           "-"]
    assert body[1][1:9] == ["failed", "mail", "failed", "-", "1", "2031-01-01T00:01:00+00:00", "failed", "535"]
    assert lines[2].endswith("5.7.8 Authentication failed / login refused")
    assert body[2][5:9] == ["1", "2031-01-01T00:01:00+00:00", "failed", "503"]
    assert lines[3].endswith("HTTP 503 from the receiver"), "attempts oldest first"
    assert body[3][5:] == ["2", "2031-01-01T00:02:00+00:00", "ok", "200", "-"]


def test_deliveries_are_filtered_by_task_channel_and_status_and_limited(app: Any, deliveries: dict[str, Any]) -> None:
    def listed(*args: str) -> list[str]:
        return [row["delivery_id"] for row in json.loads(ok(app, "alerts", "deliveries", "--json", *args))]

    assert listed("--task", str(deliveries["task"])) == [deliveries["waiting"], deliveries["retried"]]
    assert listed("--channel", str(deliveries["mail"])) == [deliveries["waiting"], deliveries["refused"]]
    assert listed("--status", "failed") == [deliveries["refused"]]
    assert listed("--channel", str(deliveries["mail"]), "--status", "delivered") == []
    assert listed("--limit", "1") == [deliveries["waiting"]]


def test_deliveries_as_json_are_what_the_api_shows(app: Any, api: Any, deliveries: dict[str, Any]) -> None:
    from_api = api.get("/api/deliveries/?channel_id=%d" % deliveries["hook"]).json["results"]
    from_cli = json.loads(ok(app, "alerts", "deliveries", "--channel", str(deliveries["hook"]), "--json"))
    assert from_cli == from_api
    assert [a["response_status"] for a in from_cli[0]["attempt_log"]] == [503, 200]


@pytest.mark.parametrize("args, message", [
    (["--status", "lost"], "'lost' is not one of"),
    (["--limit", "0"], "0 is not in the range"),
    (["--task", "x"], "'x' is not a valid integer"),
])
def test_bad_delivery_filters_are_refused(app: Any, args: list[str], message: str) -> None:
    assert_refused(app, ["alerts", "deliveries", *args], message)


def test_no_deliveries_is_said(app: Any) -> None:
    assert ok(app, "alerts", "deliveries") == "No deliveries.\n"


# -- rules ------------------------------------------------------------------------------------------------------

def test_a_task_rule_and_a_default_rule_are_created_as_the_cli(app: Any) -> None:
    channel_id, task_id = make_channel(app), make_task()

    own = ok(app, "alerts", "rule-create", "--task", str(task_id), "--events", "failed,recovered",
             "--channels", str(channel_id), "--overrun-after-seconds", "900", "--repeat-every-hours", "6")
    default = ok(app, "alerts", "rule-create", "--default", "--events", "scheduler_down,missed",
                 "--channels", f"{channel_id}", "--group-window-seconds", "0", "--json")

    assert "nightly" in own and "failed,recovered" in own and own.splitlines()[1].split()[-1] == "900"
    assert json.loads(default)[0]["task_id"] is None
    db.session.expire_all()
    stored = {r.task_id: r for r in db.session.scalars(select(AlertRule))}
    assert (stored[task_id].events, stored[task_id].channel_ids, stored[task_id].overrun_after_seconds,
            stored[task_id].repeat_every_hours, stored[task_id].group_window_seconds) == (
        ["failed", "recovered"], [channel_id], 900, 6.0, 600)
    assert (stored[None].events, stored[None].group_window_seconds, stored[None].failing_threshold) == (
        ["scheduler_down", "missed"], 0, 3)
    assert audit_events("rule") == [("create", CLI_ACTOR, "cli"), ("create", CLI_ACTOR, "cli")]


@pytest.mark.parametrize("args, message", [
    (["--default", "--events", "failed,exploded", "--channels", "{channel}"], "events.1"),
    (["--default", "--events", "failed", "--channels", "999"], "channel_ids: no such channel: 999"),
    (["--default", "--events", "failed", "--channels", "{channel},x"], "channel_ids.1"),
    (["--task", "999", "--events", "failed", "--channels", "{channel}"], "task_id: no such task: 999"),
    (["--task", "0", "--events", "failed", "--channels", "{channel}"], "task_id"),
    (["--default", "--events", "overrun", "--channels", "{channel}", "--overrun-after-seconds", "0"],
     "overrun_after_seconds"),
    (["--default", "--events", "failed", "--channels", "{channel}", "--repeat-every-hours", "0"],
     "repeat_every_hours"),
    (["--default", "--events", "", "--channels", "{channel}"], "events"),
    (["--events", "failed", "--channels", "{channel}"], "Give either --task ID or --default"),
    (["--task", "{task}", "--default", "--events", "failed", "--channels", "{channel}"],
     "Give either --task ID or --default"),
], ids=["unknown event", "unknown channel", "channel not a number", "unknown task", "task 0", "overrun 0 s",
        "repeat 0 h", "no events", "neither task nor default", "both task and default"])
def test_a_bad_rule_is_refused_with_the_apis_message_and_nothing_changes(app: Any, args: list[str],
                                                                         message: str) -> None:
    channel_id, task_id = make_channel(app), make_task()
    filled = [arg.format(channel=channel_id, task=task_id) for arg in args]
    assert_refused(app, ["alerts", "rule-create", *filled], message)


def test_a_rule_is_deleted_as_the_cli_and_an_unknown_one_is_refused(app: Any) -> None:
    channel_id = make_channel(app)
    ok(app, "alerts", "rule-create", "--default", "--events", "failed", "--channels", str(channel_id))
    rule_id = db.session.scalar(select(AlertRule.id))
    assert_refused(app, ["alerts", "rule-delete", str(rule_id + 1)], f"No rule with id {rule_id + 1} was found")

    assert f"Deleted rule {rule_id} (default)" in ok(app, "alerts", "rule-delete", str(rule_id))

    assert counts()["AlertRule"] == 0
    assert audit_events("rule") == [("create", CLI_ACTOR, "cli"), ("delete", CLI_ACTOR, "cli")]


# -- task mutes -------------------------------------------------------------------------------------------------

def test_a_tasks_alerts_are_muted_then_unmuted_as_the_cli(app: Any) -> None:
    task_id = make_task()

    muted = ok(app, "tasks", "mute", str(task_id), "--until", "2031-06-01T09:00:00-04:00")

    assert "alerts muted until 2031-06-01T13:00:00+00:00" in muted
    db.session.expire_all()
    assert db.session.get(Task, task_id).alerts_muted_until == datetime(2031, 6, 1, 13, tzinfo=timezone.utc)
    assert "alerts not muted" in ok(app, "tasks", "mute", str(task_id), "--clear")
    db.session.expire_all()
    assert db.session.get(Task, task_id).alerts_muted_until is None
    assert audit_events("task")[-2:] == [("update", CLI_ACTOR, "cli"), ("update", CLI_ACTOR, "cli")]


@pytest.mark.parametrize("args, message", [
    (["--until", "2031-06-01T09:00:00"], "until"),
    ([], "Give either --until ISO or --clear"),
], ids=["no offset", "neither"])
def test_a_bad_task_mute_is_refused_and_nothing_changes(app: Any, args: list[str], message: str) -> None:
    task_id = make_task()
    assert_refused(app, ["tasks", "mute", str(task_id), *args], message)
    assert_refused(app, ["tasks", "mute", str(task_id + 1), "--clear"], f"No task with id {task_id + 1} was found")


# -- maintenance and the rules list (as before) -----------------------------------------------------------------

def test_maintenance_is_switched_from_the_cli_and_audited_as_the_cli(app: Any) -> None:
    runner = app.test_cli_runner()
    assert "Maintenance is off" in runner.invoke(args=["alerts", "maintenance"]).output
    result = runner.invoke(args=["alerts", "maintenance", "on", "--reason", "upgrade"])
    assert result.exit_code == 0 and "Maintenance is on since" in result.output and "upgrade" in result.output
    db.session.expire_all()
    assert rules.maintenance()["on"] is True
    assert "Maintenance is off" in runner.invoke(args=["alerts", "maintenance", "off"]).output
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "maintenance")).all()
    assert [(e.action, e.source) for e in events] == [("enable", "cli"), ("disable", "cli")]
    assert {e.actor_name for e in events} == {CLI_ACTOR}


def test_the_rules_are_listed_default_first(app: Any) -> None:
    with unit_of_work():
        channel = Channel(name="hook", kind="webhook", config={"url": "https://hooks.example.com/x"}, secret_names=[])
        db.session.add(channel)
        db.session.flush()
        db.session.add(AlertRule(task_id=None, events=["failed", "scheduler_down"], channel_ids=[channel.id]))
    output = app.test_cli_runner().invoke(args=["alerts", "rules"]).output
    assert "(default)" in output and "failed,scheduler_down" in output


def test_a_rules_own_overrun_threshold_is_listed(app: Any) -> None:
    with unit_of_work():
        channel = Channel(name="hook", kind="webhook", config={"url": "https://hooks.example.com/x"}, secret_names=[])
        db.session.add(channel)
        db.session.flush()
        db.session.add(AlertRule(task_id=None, events=["overrun"], channel_ids=[channel.id], overrun_after_seconds=900))
    output = app.test_cli_runner().invoke(args=["alerts", "rules"]).output
    header, row = output.splitlines()[:2]
    assert "OVERRUN S" in header and row.split()[-1] == "900"
    as_json = app.test_cli_runner().invoke(args=["alerts", "rules", "--json"]).output
    assert '"overrun_after_seconds": 900' in as_json
