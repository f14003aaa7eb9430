"""The task commands, export and import, on SQLite and Postgres."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from chime import occurrence as occ
from chime import services
from chime.errors import ConflictError
from chime.extensions import db
from chime.models import Task, task_dependencies
from chime.schemas.task import WRITABLE
from chime.unit_of_work import unit_of_work

INTERVAL = {"job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL", "interval_seconds": 60}


def make(name: str, **fields: Any) -> Task:
    with unit_of_work():
        return services.create_task({"name": name, **INTERVAL, **fields}, allow_shell=False)


def cli(app: Any, *args: str, input: str | None = None) -> Any:
    return app.test_cli_runner().invoke(args=list(args), input=input)


def ok(app: Any, *args: str, input: str | None = None) -> Any:
    result = cli(app, *args, input=input)
    assert result.exit_code == 0, result.output
    return result


def failed(app: Any, *args: str, input: str | None = None, code: int = 1) -> str:
    """Run a command that must fail cleanly (a message, no traceback); return its output."""
    result = cli(app, *args, input=input)
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.output


def task_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Task))


def write(tmp_path: Path, document: Any, name: str = "tasks.json") -> str:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return str(path)


def empty_database(redis_client: Any) -> None:
    db.session.execute(delete(task_dependencies))
    db.session.execute(delete(Task))
    db.session.commit()
    redis_client.flushdb()


def entry(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, **INTERVAL, **fields}


# -- tasks ------------------------------------------------------------------------------------

def test_every_command_and_option_is_documented(app: Any) -> None:
    top = ok(app, "--help").output
    for command in ("tasks", "prune-logs", "export", "import"):
        assert command in top
    for sub in ("list", "show", "run", "enable", "disable"):
        assert sub in ok(app, "tasks", "--help").output
        assert "Usage" in ok(app, "tasks", sub, "--help").output
    assert "--json" in ok(app, "tasks", "list", "--help").output
    assert "--days" in ok(app, "prune-logs", "--help").output
    assert "--output" in ok(app, "export", "--help").output
    import_help = ok(app, "import", "--help").output
    assert "--update" in import_help and "--dry-run" in import_help


def test_tasks_list_table_and_json(app: Any) -> None:
    make("ping")
    make("nightly", schedule_type="CRON", interval_seconds=None, cron="0 9 * * *", timezone="Europe/Berlin",
         enabled=False)
    lines = ok(app, "tasks", "list").output.splitlines()
    assert lines[0].split() == ["ID", "NAME", "TYPE", "SCHEDULE", "ENABLED", "STATUS", "NEXT", "RUN"]
    assert "ping" in lines[1] and "every 60s" in lines[1] and "yes" in lines[1] and "+00:00" in lines[1]
    assert "nightly" in lines[2] and "0 9 * * * (Europe/Berlin)" in lines[2] and " no " in lines[2]
    listed = json.loads(ok(app, "tasks", "list", "--json").output)
    assert [t["name"] for t in listed] == ["ping", "nightly"]
    assert listed[1]["enabled"] is False


def test_tasks_list_empty(app: Any) -> None:
    assert ok(app, "tasks", "list").output.strip() == "No tasks."
    assert json.loads(ok(app, "tasks", "list", "--json").output) == []


def test_tasks_show_prints_the_api_representation(app: Any) -> None:
    task = make("ping")
    shown = json.loads(ok(app, "tasks", "show", str(task.id)).output)
    assert shown["id"] == task.id and shown["name"] == "ping" and shown["interval_seconds"] == 60


def test_missing_task_id_is_a_clean_error(app: Any) -> None:
    for command in ("show", "run", "enable", "disable"):
        for task_id in ("999", "0", "-5", str(2**70)):
            output = failed(app, "tasks", command, "--", task_id)
            assert f"No task with id {task_id} was found" in output


def test_non_integer_task_id_is_a_usage_error(app: Any) -> None:
    assert "is not a valid integer" in failed(app, "tasks", "show", "abc", code=2)


def test_tasks_run_queues_a_manual_run_and_prints_its_job_id(app: Any, redis_client: Any) -> None:
    task = make("ping", enabled=False)
    job_id = ok(app, "tasks", "run", str(task.id)).output.strip()
    parsed = occ.parse_job_id(job_id)
    assert parsed is not None and parsed.task_id == task.id and parsed.manual
    assert redis_client.exists(occ.JOB_KEY.format(job_id=job_id))


def test_tasks_disable_and_enable(app: Any, redis_client: Any) -> None:
    task = make("ping")
    assert occ.pending_job_id(redis_client, task.id) is not None
    assert "disabled; next run: none" in ok(app, "tasks", "disable", str(task.id)).output
    db.session.expire_all()
    assert db.session.get(Task, task.id).enabled is False
    assert occ.pending_job_id(redis_client, task.id) is None
    assert "enabled; next run: 20" in ok(app, "tasks", "enable", str(task.id)).output
    db.session.expire_all()
    assert db.session.get(Task, task.id).enabled is True
    assert occ.pending_job_id(redis_client, task.id) is not None
    ok(app, "tasks", "enable", str(task.id))  # enabling twice is fine
    assert db.session.get(Task, task.id).enabled is True


# -- export ------------------------------------------------------------------------------------

def test_export_writes_every_writable_field_and_dependencies_by_name(app: Any, tmp_path: Path) -> None:
    parent = make("parent", start_at="2030-01-01T00:00:00+02:00")
    make("child", depends_on=[parent.id])
    document = json.loads(ok(app, "export").output)
    assert document["version"] == 1
    assert [e["name"] for e in document["tasks"]] == ["parent", "child"]  # parents first, though "c" < "p"
    by_name = {e["name"]: e for e in document["tasks"]}
    for item in document["tasks"]:
        assert set(item) == WRITABLE
    assert by_name["child"]["depends_on"] == ["parent"]
    assert by_name["parent"]["start_at"] == "2029-12-31T22:00:00+00:00"

    target = tmp_path / "out.json"
    assert "Exported 2 task(s)" in ok(app, "export", "-o", str(target)).output
    assert json.loads(target.read_text(encoding="utf-8")) == document


def test_export_of_an_empty_database(app: Any) -> None:
    assert json.loads(ok(app, "export").output) == {"version": 1, "tasks": []}


def test_an_export_that_cannot_be_encoded_leaves_the_existing_file_byte_for_byte(
        app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make("one")
    (tmp_path / "backups").mkdir()
    backup = tmp_path / "backups" / "backup.json"
    ok(app, "export", "-o", str(backup))
    before = backup.read_bytes()
    from chime import transfer

    real_dump = transfer.dump
    monkeypatch.setattr(transfer, "dump", lambda document: real_dump(document).replace('"one"', '"\ud800"'))

    assert "not valid Unicode" in failed(app, "export", "-o", str(backup))
    assert backup.read_bytes() == before
    assert [p.name for p in backup.parent.iterdir()] == ["backup.json"]


def test_an_export_that_fails_while_writing_leaves_the_existing_file_and_no_temporary_file(
        app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make("one")
    (tmp_path / "backups").mkdir()
    backup = tmp_path / "backups" / "backup.json"
    backup.write_bytes(b'{"version": 1, "tasks": []}\n')
    backup.chmod(0o640)
    from chime import transfer

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(transfer.os, "fsync", disk_full)
    assert "No space left on device" in failed(app, "export", "-o", str(backup))
    assert backup.read_bytes() == b'{"version": 1, "tasks": []}\n'
    assert [p.name for p in backup.parent.iterdir()] == ["backup.json"]

    monkeypatch.undo()
    ok(app, "export", "-o", str(backup))
    assert [t["name"] for t in json.loads(backup.read_text(encoding="utf-8"))["tasks"]] == ["one"]
    assert backup.stat().st_mode & 0o777 == 0o640


def test_export_import_round_trip_into_an_empty_database(app: Any, redis_client: Any, tmp_path: Path) -> None:
    late = make("late-parent-child", description="made before its parent")
    base = make("base", description="ünïcode ✓", max_retries=0, retry_backoff_seconds=5, timeout_seconds=30,
                overlap="ALLOW", misfire_grace_seconds=0, queue="high", notify="ON_FAILURE")
    make("cron", schedule_type="CRON", interval_seconds=None, cron="*/5  9-17 * * 1-5", timezone="America/New_York",
         start_at="2030-01-01T08:00:00.123456-05:00", end_at="2031-01-01T00:00:00+00:00", depends_on=[base.id])
    once = make("once", schedule_type="ONE_TIME", interval_seconds=None, run_at="2032-02-29T12:30:00+01:00",
                enabled=False, job="http_request", args={"url": "https://example.com/hook", "method": "POST"})
    make("diamond", depends_on=[base.id, once.id], args={"message": "x" * 10})
    with unit_of_work():
        services.update_task(late, {"depends_on": [once.id]}, partial=True, allow_shell=False)
    original = ok(app, "export").output

    empty_database(redis_client)
    path = write(tmp_path, original)
    result = ok(app, "import", path)
    assert "Imported: 5 task(s): 5 created, 0 updated, 0 unchanged" in result.output
    assert ok(app, "export").output == original
    # every imported enabled task got its pending occurrence
    for task in db.session.scalars(select(Task)):
        assert (occ.pending_job_id(redis_client, task.id) is not None) == task.enabled


# -- import errors ----------------------------------------------------------------------------

def test_import_missing_file_is_a_usage_error(app: Any, tmp_path: Path) -> None:
    assert "No such file or directory" in failed(app, "import", str(tmp_path / "nope.json"), code=2)


BAD_FILES = [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"version": 2, "tasks": []}', "Unsupported file version 2"),
    ('{"version": true, "tasks": []}', "Unsupported file version True"),
    ('{"tasks": []}', "Unsupported file version None"),
    ('{"version": 1, "tasks": {}}', '"tasks" must be a list'),
    ('{"version": 1, "tasks": [], "extra": 1}', "Unknown top-level keys: extra"),
]


def test_import_bad_file_is_a_clean_error(app: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    for content, message in BAD_FILES:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        assert message in failed(app, "import", str(path)), content
    assert task_count() == 0


def test_import_reports_every_bad_entry_and_imports_nothing(app: Any, redis_client: Any, tmp_path: Path) -> None:
    document = {"version": 1, "tasks": [
        entry("good"),
        {"name": "no-job", "schedule_type": "INTERVAL", "interval_seconds": 60},
        entry("bad-cron", schedule_type="CRON", interval_seconds=None, cron="every day"),
        "not an object",
        entry("unknown-parent", depends_on=["ghost"]),
        entry("ids-not-names", depends_on=[1]),
        entry("many-problems", queue="urgent", max_retries=-1, surprise=True),
        entry("shell", job="shell", args={"command": "true"}),
        entry("bad-date", schedule_type="ONE_TIME", interval_seconds=None, run_at="tomorrow"),
    ]}
    output = failed(app, "import", write(tmp_path, document))
    assert "8 of 9 entries are invalid; nothing was imported" in output
    assert "entry 1 ('no-job'): job: required" in output
    assert "entry 2 ('bad-cron'): cron:" in output
    assert "entry 3: entry: must be a JSON object" in output
    assert "entry 4 ('unknown-parent'): depends_on: no task named 'ghost' in the file or the database" in output
    assert "entry 5 ('ids-not-names'): depends_on: must be a list of task names" in output
    assert "max_retries: must be between 0 and 100" in output
    assert "queue: must be one of high, default, low" in output
    assert "surprise: unknown field" in output
    assert "entry 7 ('shell'): job: shell jobs are disabled" in output
    assert "entry 8 ('bad-date'): run_at: must be an ISO-8601 date-time" in output
    assert "entry 0" not in output
    assert task_count() == 0
    assert redis_client.zcard(occ.SCHEDULED_KEY) == 0


def test_dependency_on_an_invalid_entry_is_reported_once(app: Any, tmp_path: Path) -> None:
    document = {"version": 1, "tasks": [entry("child", depends_on=["parent"]), entry("parent", queue="nope")]}
    output = failed(app, "import", write(tmp_path, document))
    assert "1 of 2 entries are invalid" in output
    assert "entry 1 ('parent'): queue:" in output


def test_import_rejects_a_dependency_cycle_inside_the_file(app: Any, tmp_path: Path) -> None:
    document = {"version": 1, "tasks": [
        entry("a", depends_on=["b"]), entry("b", depends_on=["c"]), entry("c", depends_on=["a"]),
        entry("selfish", depends_on=["selfish", "ghost"]), entry("downstream", depends_on=["a"]), entry("fine"),
    ]}
    output = failed(app, "import", write(tmp_path, document))
    assert "4 of 6 entries are invalid" in output
    for index, name in enumerate("abc"):
        assert f"entry {index} ('{name}'): depends_on: dependency cycle: a -> b -> c -> a" in output
    assert "entry 3 ('selfish'): depends_on: a task cannot depend on itself; no task named 'ghost'" in output
    assert "downstream" not in output
    assert task_count() == 0


def test_import_rejects_a_cycle_through_existing_tasks(app: Any, tmp_path: Path) -> None:
    parent = make("parent")
    make("child", depends_on=[parent.id])
    document = {"version": 1, "tasks": [entry("parent", depends_on=["child"])]}
    output = failed(app, "import", "--update", write(tmp_path, document))
    assert "dependency cycle: child -> parent -> child" in output or \
        "dependency cycle: parent -> child -> parent" in output
    db.session.expire_all()
    assert db.session.get(Task, parent.id).parents == []


def test_duplicate_names_inside_the_file(app: Any, tmp_path: Path) -> None:
    document = {"version": 1, "tasks": [entry("twin"), entry(" twin ")]}
    for args in ([], ["--update"]):
        output = failed(app, "import", *args, write(tmp_path, document))
        assert "entry 1 ('twin'): name: duplicate: entry 0 has the same name" in output
    assert task_count() == 0


def test_existing_name_without_update_is_a_conflict(app: Any, tmp_path: Path) -> None:
    existing = make("taken")
    document = {"version": 1, "tasks": [entry("new"), entry("taken", interval_seconds=120)]}
    output = failed(app, "import", write(tmp_path, document))
    assert f"entry 1 ('taken'): name: a task with this name already exists (id {existing.id}); use --update" \
        in output
    assert task_count() == 1
    db.session.expire_all()
    assert db.session.get(Task, existing.id).interval_seconds == 60


def test_import_with_update(app: Any, redis_client: Any, tmp_path: Path) -> None:
    changed = make("changed")
    same = make("same")
    version = same.version
    document = json.loads(ok(app, "export").output)
    document["tasks"][0]["interval_seconds"] = 300
    document["tasks"][0]["depends_on"] = ["brand-new"]
    document["tasks"].append(entry("brand-new", queue="low"))
    output = ok(app, "import", "--update", write(tmp_path, document)).output
    assert f"updated: 'changed' (id {changed.id})" in output
    assert f"unchanged: 'same' (id {same.id})" in output
    assert "created: 'brand-new'" in output
    assert "Imported: 3 task(s): 1 created, 1 updated, 1 unchanged" in output
    db.session.expire_all()
    updated = db.session.get(Task, changed.id)
    assert updated.interval_seconds == 300
    assert [p.name for p in updated.parents] == ["brand-new"]
    assert db.session.get(Task, same.id).version == version
    assert task_count() == 3


def test_import_orders_parents_first_and_resolves_existing_names(app: Any, tmp_path: Path) -> None:
    existing = make("existing")
    document = {"version": 1, "tasks": [
        entry("grandchild", depends_on=["child", "existing"]),
        entry("child", depends_on=["root"]),
        entry("root"),
    ]}
    output = ok(app, "import", write(tmp_path, document)).output
    lines = [line for line in output.splitlines() if line.startswith("created")]
    assert [line.split("'")[1] for line in lines] == ["root", "child", "grandchild"]
    by_name = {t.name: t for t in db.session.scalars(select(Task))}
    assert sorted(p.name for p in by_name["grandchild"].parents) == ["child", "existing"]
    assert [p.id for p in by_name["child"].parents] == [by_name["root"].id]
    assert existing.id in {p.id for p in by_name["grandchild"].parents}


def test_import_from_standard_input_and_dry_run(app: Any) -> None:
    text = json.dumps({"version": 1, "tasks": [entry("piped")]})
    assert "would be created: 'piped'" in ok(app, "import", "--dry-run", "-", input=text).output
    assert task_count() == 0
    assert "created: 'piped'" in ok(app, "import", "-", input=text).output
    assert task_count() == 1


def test_a_failure_half_way_keeps_nothing_of_the_file(app: Any, redis_client: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    kept = make("kept")
    document = {"version": 1, "tasks": [entry("first"), entry("kept", interval_seconds=999),
                                        entry("second", depends_on=["kept"])]}
    real_create = services.create_task
    calls = []

    def flaky_create(payload: Any, **kwargs: Any) -> Task:
        calls.append(payload["name"])
        if len(calls) == 2:
            raise ConflictError("A task named 'second' already exists")
        return real_create(payload, **kwargs)

    monkeypatch.setattr(services, "create_task", flaky_create)
    output = failed(app, "import", "--update", write(tmp_path, document))
    assert "Import failed at entry 2 ('second')" in output
    assert "nothing was imported" in output
    db.session.expire_all()
    assert [t.name for t in db.session.scalars(select(Task))] == ["kept"]
    assert db.session.get(Task, kept.id).interval_seconds == 60
    assert occ.pending_job_id(redis_client, kept.id) is not None


def database_snapshot() -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order."""
    db.session.expire_all()
    return {table.name: sorted(map(tuple, db.session.execute(table.select()).all()), key=repr)
            for table in db.metadata.sorted_tables}


def redis_snapshot(connection: Any) -> dict[bytes, bytes]:
    return {key: connection.dump(key) for key in connection.keys("*")}


def test_an_import_failing_at_its_last_entry_leaves_the_database_and_redis_exactly_as_before(
        app: Any, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = make("parent")
    make("child", depends_on=[parent.id], queue="low")
    database_before, redis_before = database_snapshot(), redis_snapshot(redis_client)
    document = {"version": 1, "tasks": [entry("parent", interval_seconds=120), entry("fresh"),
                                        entry("child", depends_on=["fresh"]), entry("last")]}
    real_create = services.create_task

    def create_unless_last(payload: Any, **kwargs: Any) -> Task:
        if payload["name"] == "last":
            raise ConflictError("A task named 'last' already exists")
        return real_create(payload, **kwargs)

    monkeypatch.setattr(services, "create_task", create_unless_last)
    output = failed(app, "import", "--update", write(tmp_path, document))
    assert "Import failed at entry 3 ('last')" in output and "nothing was imported" in output
    assert database_snapshot() == database_before
    assert redis_snapshot(redis_client) == redis_before


def test_reconcile_command_prints_the_same_report_as_the_api(app: Any) -> None:
    import json

    result = app.test_cli_runner().invoke(args=["reconcile"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["tasks_checked"] == 0 and set(report) >= {"pending_restored", "orphans_removed", "executions_lost"}


def test_create_admin_and_ensure_admin_never_make_a_second_admin(app: Any) -> None:
    from sqlalchemy import func, select

    from chime.extensions import db
    from chime.models import User

    runner = app.test_cli_runner()
    first = runner.invoke(args=["ensure-admin"])
    assert first.exit_code == 0 and "shown once" in first.output
    assert "already exists" in runner.invoke(args=["ensure-admin"]).output
    duplicate = runner.invoke(args=["create-admin", "--username", "admin", "--password", "x" * 12])
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_the_first_admin_made_by_ensure_admin_is_in_the_audit_trail(app: Any) -> None:
    from chime.models import AuditEvent

    app.test_cli_runner().invoke(args=["ensure-admin"])

    event = db.session.query(AuditEvent).filter_by(object_type="user", action="create").one()
    assert event.after == {"username": app.config["ADMIN_USERNAME"], "role": "admin"}
