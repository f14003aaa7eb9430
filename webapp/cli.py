"""Command-line tools: `flask --app wsgi <command>`."""
from __future__ import annotations

import functools
import getpass
import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from webapp.auth import ensure_first_admin
from chime import users
from chime.audit import Actor, acting_as
from chime.enums import DeliveryStatus, Role, Source
from chime.errors import ChimeError
from chime.extensions import db
from chime.unit_of_work import unit_of_work
from chime.models import ScheduleType, Task, User
from chime.schemas.task import task_to_dict
from chime.validation import MAX_ID


def register_commands(app: Flask) -> None:
    """Attach every command to the app's CLI."""
    app.cli.add_command(create_admin_command)
    app.cli.add_command(create_token_command)
    app.cli.add_command(ensure_admin_command)
    app.cli.add_command(reconcile_command)
    app.cli.add_command(tasks_group)
    app.cli.add_command(runs_group)
    app.cli.add_command(prune_logs_command)
    app.cli.add_command(export_command)
    app.cli.add_command(import_command)
    app.cli.add_command(users_group)
    app.cli.add_command(jobs_command)
    app.cli.add_command(channels_group)
    app.cli.add_command(alerts_group)
    run_as_cli_actor(app.cli)


# -- who acts -----------------------------------------------------------------------------------

CLI_ACTOR_MARK = "chime_cli_actor"


def cli_actor() -> Actor:
    """The audit trail's name for whoever runs a command: the CLI, as the operating-system user."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no USER/LOGNAME and no passwd entry (a bare container)
        login = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return Actor(name=f"cli:{login}", source=Source.CLI, role=Role.ADMIN)


def run_as_cli_actor(group: click.Group) -> None:
    """Make every command of `group` -- at any depth, and whenever it was added -- run as the CLI actor.

    The commands are wrapped as the group hands them out (get_command is how `flask` and the test
    runner both find a command), so a command another module adds later is covered too.
    """
    find = group.get_command

    def get_command(ctx: click.Context, name: str) -> click.Command | None:
        command = find(ctx, name)
        if command is not None:
            _wrap_callbacks(command)
        return command

    group.get_command = get_command  # type: ignore[method-assign]


def _wrap_callbacks(command: click.Command) -> None:
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _wrap_callbacks(sub)
    callback = command.callback
    if callback is None or getattr(callback, CLI_ACTOR_MARK, False):
        return
    command.callback = _acting_as_cli(callback)


def _acting_as_cli(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with acting_as(cli_actor()):
            return callback(*args, **kwargs)

    setattr(wrapped, CLI_ACTOR_MARK, True)
    return wrapped


@click.command("create-admin")
@click.option("--username", default=None, help="User name (default: ADMIN_USERNAME or 'admin').")
@click.option("--password", default=None, help="Password (default: ADMIN_PASSWORD, else prompt).")
def create_admin_command(username: str | None, password: str | None) -> None:
    """Create an admin user with a hashed password."""
    username = username or current_app.config["ADMIN_USERNAME"]
    password = password or current_app.config["ADMIN_PASSWORD"] or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    with chime_errors(), unit_of_work():
        users.create_user({"username": username, "password": password, "role": Role.ADMIN.value})
    click.echo(f"Created admin user {username!r}")


@click.command("create-token")
@click.argument("name", required=False)
@click.option("--name", "name_option", default=None, help="Same as NAME (default: 'cli').")
@click.option("--user", "username", default=None,
              help="The user the token belongs to and whose role it carries (default: the only active admin).")
def create_token_command(name: str | None, name_option: str | None, username: str | None) -> None:
    """Create an API token NAME of a user; it is printed once and stored hashed."""
    with chime_errors(), unit_of_work():
        owner = load_user(username) if username is not None else users.the_only_admin()
        _, token = users.create_token_for(owner, name or name_option or "cli")
    click.echo(token)


@click.command("ensure-admin")
def ensure_admin_command() -> None:
    """Create the first admin if no user exists (generating a password when ADMIN_PASSWORD is unset)."""
    username = current_app.config["ADMIN_USERNAME"]
    given = current_app.config["ADMIN_PASSWORD"]
    created = ensure_first_admin(username, given or secrets.token_urlsafe(12))
    if created is None:
        click.echo("An admin user already exists")
    elif given:
        click.echo(f"Created admin user {username!r} with the password from ADMIN_PASSWORD")
    else:
        click.echo(f"Created admin user {username!r} with password {created[1]!r} (shown once)")


@click.command("reconcile")
def reconcile_command() -> None:
    """Run one reconcile pass now and print its report as JSON."""
    import json

    from scheduler.reconcile import reconcile
    from chime.extensions import get_redis

    click.echo(json.dumps(reconcile(get_redis()), indent=2))


# -- tasks ------------------------------------------------------------------------------------

@contextmanager
def chime_errors() -> Iterator[None]:
    """Turn Chime's errors (not found, conflict, Redis down...) into a clean CLI error (exit code 1)."""
    try:
        yield
    except ChimeError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None


def load_task(task_id: int) -> Task:
    """Return the task with that id, or fail with a ClickException."""
    from chime.services import get_task
    from chime.validation import MAX_ID

    if not 1 <= task_id <= MAX_ID:
        raise click.ClickException(f"No task with id {task_id} was found")
    with chime_errors():
        return get_task(task_id)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def schedule_text(task: Task) -> str:
    """Describe a task's schedule in a few words."""
    if task.schedule_type == ScheduleType.CRON.value:
        text = task.cron or ""
    elif task.schedule_type == ScheduleType.INTERVAL.value:
        text = f"every {task.interval_seconds}s"
    else:
        text = "at " + (task.run_at.isoformat() if task.run_at else "-")
    return text if task.timezone in (None, "UTC") else f"{text} ({task.timezone})"


def table_cell(value: Any, width: int = 40) -> str:
    """Show a value on one line, at most `width` characters."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text if len(text) <= width else text[:width - 1] + "~"


TASK_COLUMNS = ("ID", "NAME", "TYPE", "SCHEDULE", "ENABLED", "STATUS", "NEXT RUN")


def task_row(task: Task) -> list[str]:
    return [str(task.id), table_cell(task.name), task.schedule_type, table_cell(schedule_text(task)),
            "yes" if task.enabled else "no", task.status, task.next_run_at.isoformat() if task.next_run_at else "-"]


def render_table(header: tuple[str, ...], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [list(header), *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in [list(header), *rows])


tasks_group = AppGroup("tasks", help="List, show, run, enable and disable tasks.")


@tasks_group.command("list", short_help="List tasks as a table (or --json).")
@click.option("--json", "as_json", is_flag=True, help="Print the tasks as a JSON list (as the API shows them).")
def tasks_list_command(as_json: bool) -> None:
    """List every task: id, name, type, schedule, enabled, status and next run."""
    tasks = db.session.scalars(select(Task).order_by(Task.id)).all()
    if as_json:
        echo_json([task_to_dict(task) for task in tasks])
    elif not tasks:
        click.echo("No tasks.")
    else:
        click.echo(render_table(TASK_COLUMNS, [task_row(task) for task in tasks]))


@tasks_group.command("show")
@click.argument("task_id", metavar="ID", type=int)
def tasks_show_command(task_id: int) -> None:
    """Print task ID as JSON (as the API shows it)."""
    echo_json(task_to_dict(load_task(task_id)))


@tasks_group.command("run", short_help="Queue a manual run now; print the job id.")
@click.argument("task_id", metavar="ID", type=int)
@click.option("--args", "args_json", metavar="JSON", default=None,
              help='Arguments for this run only, as a JSON object (e.g. \'{"message": "hi"}\'); '
                   "checked like the task's own, which stay as they are.")
def tasks_run_command(task_id: int, args_json: str | None) -> None:
    """Queue one manual run of task ID now (enabled or not) and print the RQ job id."""
    from chime.services import run_task_now

    args = None
    if args_json is not None:
        try:
            args = json.loads(args_json)
        except ValueError as error:
            raise click.BadParameter(f"is not valid JSON ({error})", param_hint="--args") from None
    task = load_task(task_id)
    with chime_errors():
        click.echo(run_task_now(task, args=args, allow_shell=bool(current_app.config["ALLOW_SHELL_JOBS"])))


def _toggle(task_id: int, enabled: bool) -> None:
    from chime.services import toggle_task

    task = load_task(task_id)
    with chime_errors(), unit_of_work():
        toggle_task(task, enabled=enabled)
    next_run = task.next_run_at.isoformat() if task.next_run_at else "none"
    click.echo(f"Task {task.id} {task.name!r} {'enabled' if enabled else 'disabled'}; next run: {next_run}")


@tasks_group.command("enable")
@click.argument("task_id", metavar="ID", type=int)
def tasks_enable_command(task_id: int) -> None:
    """Enable task ID and schedule its next run."""
    _toggle(task_id, True)


@tasks_group.command("disable")
@click.argument("task_id", metavar="ID", type=int)
def tasks_disable_command(task_id: int) -> None:
    """Disable task ID and drop its pending run."""
    _toggle(task_id, False)


@tasks_group.command("pause", short_help="Pause a task with a reason, optionally until a given time.")
@click.argument("task_id", metavar="ID", type=int)
@click.option("--reason", required=True, help="Why (shown on the task and in the list).")
@click.option("--until", "until", default=None, metavar="ISO",
              help="When it resumes by itself: ISO 8601 with a UTC offset, e.g. 2030-01-31T09:00:00+01:00.")
def tasks_pause_command(task_id: int, reason: str, until: str | None) -> None:
    """Pause task ID: disable it with a reason (and resume it by itself at --until)."""
    from chime.controls import pause_task

    task = load_task(task_id)
    with chime_errors(), unit_of_work():
        pause_task(task, {"reason": reason, "resume_at": until})
    resumes = task.resume_at.isoformat() if task.resume_at else "when someone resumes it"
    click.echo(f"Task {task.id} {task.name!r} paused; resumes: {resumes}")


@tasks_group.command("resume")
@click.argument("task_id", metavar="ID", type=int)
def tasks_resume_command(task_id: int) -> None:
    """Resume task ID: end its pause, enable it and schedule its next run."""
    from chime.controls import resume_task

    task = load_task(task_id)
    with chime_errors(), unit_of_work():
        resume_task(task)
    next_run = task.next_run_at.isoformat() if task.next_run_at else "none"
    click.echo(f"Task {task.id} {task.name!r} resumed; next run: {next_run}")


@tasks_group.command("mute", short_help="Mute a task's alerts until a given time (or --clear the mute).")
@click.argument("task_id", metavar="ID", type=int)
@click.option("--until", "until", default=None, metavar="ISO",
              help="Send none of its alerts until then: ISO 8601 with a UTC offset, e.g. 2030-01-31T09:00:00+01:00.")
@click.option("--clear", is_flag=True, help="End the mute now.")
def tasks_mute_command(task_id: int, until: str | None, clear: bool) -> None:
    """Mute task ID's alerts until --until, or unmute them (--clear): as PUT /api/tasks/ID/alerts-mute/."""
    from chime import alert_rules

    require_one_of(until, clear)
    task = load_task(task_id)
    with chime_errors(), unit_of_work():
        alert_rules.mute_task(task, {"until": None if clear else until})
    muted = task.alerts_muted_until.isoformat() if task.alerts_muted_until else None
    click.echo(f"Task {task.id} {task.name!r}: alerts muted until {muted}" if muted else
               f"Task {task.id} {task.name!r}: alerts not muted")


# -- jobs -------------------------------------------------------------------------------------

def parameters_text(spec: Any) -> str:
    """A job's parameters in a few words, defaults as JSON: `url: string, method: string = "GET"`."""
    return ", ".join(f"{p.name}: {p.type}" + ("" if p.required else f" = {json.dumps(p.default)}")
                     for p in spec.parameters)


@click.command("jobs", short_help="List the jobs tasks can run (built-in and your own).")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON (as GET /api/jobs/ shows them).")
def jobs_command(as_json: bool) -> None:
    """List every registered job: the built-ins and those of CHIME_JOB_MODULES and `chime.jobs` entry points."""
    import jobs.registry as registry
    from chime.schemas.job import JobRead

    specs = registry.all_jobs()
    if as_json:
        echo_json([JobRead.dump(spec) for spec in specs])
        return
    rows = [[spec.name, table_cell(parameters_text(spec), 60), table_cell(spec.description, 60)] for spec in specs]
    click.echo(render_table(("JOB", "PARAMETERS", "DESCRIPTION"), rows))


# -- log retention ----------------------------------------------------------------------------

@click.command("prune-logs", short_help="Delete old execution logs and read notifications.")
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Delete entries older than this many days (default: LOG_RETENTION_DAYS, 30 unless set).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Rows deleted per transaction.")
@click.option("--audit-days", type=click.IntRange(min=0), default=None,
              help="Delete audit events older than this many days (default: CHIME_AUDIT_RETENTION_DAYS, "
                   "365 unless set; 0 keeps them all).")
def prune_logs_command(days: int | None, batch_size: int, audit_days: int | None) -> None:
    """Delete old execution-log entries and old READ notifications, in batches; and audit events
    past their own retention.

    Unread notifications, RUNNING executions and the run that marks a ONE_TIME task as done are kept.
    The scheduler also runs this every hour (job chime-prune-logs) unless LOG_RETENTION_DAYS <= 0.
    """
    from scheduler.retention import prune, prune_audit
    from chime.timeutil import utcnow

    if days is None:
        days = int(current_app.config["LOG_RETENTION_DAYS"])
        if days <= 0:
            raise click.ClickException("Log retention is off (LOG_RETENTION_DAYS <= 0); pass --days N to prune")
    report = prune(utcnow(), days, batch_size=batch_size)
    click.echo(f"Deleted {report['executions_deleted']} execution(s) and {report['notifications_deleted']} "
               f"read notification(s) created before {report['cutoff']} ({days} days).")
    audit_days = int(current_app.config["AUDIT_RETENTION_DAYS"]) if audit_days is None else audit_days
    if audit_days > 0:
        audit = prune_audit(utcnow(), audit_days, batch_size=batch_size)
        click.echo(f"Deleted {audit['audit_events_deleted']} audit event(s) created before {audit['audit_cutoff']} "
                   f"({audit_days} days).")


# -- export / import ----------------------------------------------------------------------------

@click.command("export", short_help="Export every task definition as JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, allow_dash=True), default="-",
              help="Write to this file instead of standard output.")
def export_command(output: str) -> None:
    """Write every task definition as JSON: {"version": 1, "tasks": [...]}.

    Each entry has exactly the fields the API accepts; depends_on lists task NAMES, so the file
    imports into an empty database (see `import`).
    """
    from chime.transfer import dump, export_tasks, replace_file

    document = export_tasks()
    try:
        data = dump(document).encode("utf-8")
    except UnicodeEncodeError:
        raise click.ClickException("Nothing exported: a task holds text that is not valid Unicode (a lone "
                                   "surrogate); correct that task first") from None
    if output == "-":
        click.echo(data, nl=False)
        return
    try:
        replace_file(output, data)  # never click's atomic=True: it replaces the file even when writing failed
    except OSError as error:
        raise click.ClickException(f"Nothing exported: cannot write {output}: {error.strerror or error}; "
                                   "an existing file there is unchanged") from None
    click.echo(f"Exported {len(document['tasks'])} task(s) to {output}")


@click.command("import", short_help="Import tasks from an export file (all or nothing).")
@click.argument("file", type=click.File("rb"))
@click.option("--update", is_flag=True,
              help="Update tasks whose name already exists (default: such entries are errors).")
@click.option("--dry-run", is_flag=True, help="Check the file and show what would change; change nothing.")
def import_command(file: Any, update: bool, dry_run: bool) -> None:
    """Create tasks from FILE (an `export` file; - reads standard input), all or nothing.

    Every entry is validated like an API request; every problem is reported and, if there is
    any, nothing is imported. Parents are created before their children and depends_on names
    resolve to the tasks in the file or already in the database. The whole file is one
    transaction: committed once, or rolled back entirely.
    """
    from chime import transfer

    allow_shell = bool(current_app.config["ALLOW_SHELL_JOBS"])
    try:
        with unit_of_work():
            entries = transfer.load_document(file.read())
            checked = transfer.check_entries(entries, allow_shell=allow_shell, update=update)
            outcomes = (transfer.plan if dry_run else transfer.apply)(checked, allow_shell=allow_shell)
    except (transfer.TransferError, transfer.ImportRejected, transfer.ImportFailed) as error:
        raise click.ClickException(str(error)) from None
    except SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        raise click.ClickException(f"Nothing was imported: the database refused the change ({cause})") from None
    prefix = "would be " if dry_run else ""
    for outcome in outcomes:
        where = f" (id {outcome.task_id})" if outcome.task_id is not None else ""
        click.echo(f"{prefix}{outcome.action}: {outcome.name!r}{where}")
    counts = {action: sum(o.action == action for o in outcomes) for action in ("created", "updated", "unchanged")}
    summary = ", ".join(f"{count} {action}" for action, count in counts.items())
    click.echo(f"{'Dry run, nothing changed' if dry_run else 'Imported'}: {len(outcomes)} task(s): {summary}")


users_group = AppGroup("users", help="List, create and disable or enable users, change a role or a password.")


def load_user(username: str) -> User:
    user = users.find_user(username)
    if user is None:
        raise click.ClickException(f"No user named {username!r}")
    return user


@users_group.command("list")
def users_list_command() -> None:
    """List the users: name, role, active or disabled, created."""
    rows = [[u.username, Role(u.role).value, "active" if u.active else "disabled", u.created_at.isoformat()]
            for u in users.list_users()]
    click.echo(render_table(("USER", "ROLE", "STATE", "CREATED"), rows))


ROLE_NAMES = click.Choice([role.value for role in Role], case_sensitive=False)


@users_group.command("create")
@click.argument("username")
@click.option("--role", type=ROLE_NAMES, default=Role.VIEWER.value, show_default=True, help="What the user may do.")
@click.option("--password", default=None, help="The initial password (default: prompt).")
def users_create_command(username: str, role: str, password: str | None) -> None:
    """Create a user with a role (viewer reads; operator also runs and pauses; admin also edits)."""
    password = password or click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with chime_errors(), unit_of_work():
        users.create_user({"username": username, "password": password, "role": role})
    click.echo(f"Created {role.lower()} {username!r}")


@users_group.command("set-role")
@click.argument("username")
@click.argument("role", type=ROLE_NAMES)
def users_set_role_command(username: str, role: str) -> None:
    """Change a user's role (the last active admin keeps theirs); their tokens carry the new role at once."""
    with chime_errors(), unit_of_work():
        users.change_role(load_user(username), Role(role.lower()))
    click.echo(f"{username!r} is now {role.lower()}")


@users_group.command("disable")
@click.argument("username")
def users_disable_command(username: str) -> None:
    """Disable a user: signing in and their tokens are refused, every session of the user ends at once."""
    with chime_errors(), unit_of_work():
        users.set_active(load_user(username), False)
    click.echo(f"Disabled {username!r}; every session of the user has ended")


@users_group.command("enable")
@click.argument("username")
def users_enable_command(username: str) -> None:
    """Let a disabled user sign in again."""
    with chime_errors(), unit_of_work():
        users.set_active(load_user(username), True)
    click.echo(f"Enabled {username!r}")


@users_group.command("set-password")
@click.argument("username")
@click.option("--password", default=None, help="The new password (default: prompt).")
def users_set_password_command(username: str, password: str | None) -> None:
    """Change a user's password; every session of the user ends."""
    user = load_user(username)
    password = password or click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with chime_errors(), unit_of_work():
        users.set_password(user, password)
    click.echo(f"Changed the password of {username!r}; every session of the user has ended")


# -- alert channels -----------------------------------------------------------------------------

channels_group = AppGroup("channels", help="Create, list, mute, test and delete alert channels.")
CHANNEL_COLUMNS = ("ID", "NAME", "KIND", "ENABLED", "SECRETS", "MUTED UNTIL")


def channel_rows(channel_list: list[Any]) -> list[dict[str, Any]]:
    """The channels as GET /api/channels/ shows each: secrets only as set / not set, a webhook URL masked."""
    from chime import channels
    from chime.schemas.channel import ChannelRead

    return [ChannelRead.dump(channels.channel_view(channel)) for channel in channel_list]


def echo_channels(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        echo_json(rows)
        return
    click.echo(render_table(CHANNEL_COLUMNS, [
        [str(row["id"]), table_cell(row["name"]), row["kind"], "yes" if row["enabled"] else "no",
         ", ".join(f"{name} {state}" for name, state in row["secrets"].items()) or "-", row["muted_until"] or "-"]
        for row in rows]))


def json_option(value: str | None, option: str) -> Any:
    """The JSON of an option, given inline, as @path (a file) or @- (standard input, keeping secrets out of the
    shell's history). A parse error names the option and the position, never the text (it may hold a secret)."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        path = value[1:]
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise click.BadParameter(f"cannot read {path!r} ({error.strerror})", param_hint=option) from None
    try:
        return json.loads(text)
    except ValueError as error:
        where = f"line {error.lineno} column {error.colno}" if isinstance(error, json.JSONDecodeError) else "?"
        raise click.BadParameter(f"is not valid JSON (at {where})", param_hint=option) from None


def load_channel(channel_id: int) -> Any:
    from chime import channels

    if not 1 <= channel_id <= MAX_ID:
        raise click.ClickException(f"No channel with id {channel_id} was found")
    with chime_errors():
        return channels.get_channel(channel_id)


@channels_group.command("list", short_help="List alert channels (secrets only as set / not set).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /api/channels/ shows each).")
def channels_list_command(as_json: bool) -> None:
    from chime import channels

    echo_channels(channel_rows(channels.list_channels()), as_json)


@channels_group.command("create", short_help="Create an alert channel (the body POST /api/channels/ takes).")
@click.option("--name", required=True, help="Unique; how rules and the admin name it.")
@click.option("--kind", required=True, type=click.Choice(["webhook", "email", "slack"]), help="The channel's kind.")
@click.option("--config", "config_json", metavar="JSON|@FILE", default=None,
              help='The kind\'s settings as a JSON object, inline, @file or @- (stdin). webhook: {"url": ...} '
                   '(kept sealed, shown as scheme://host/…); email: {"host", "port", "security", "username", '
                   '"from_address", "to", "timeout_seconds"}; slack: {}.')
@click.option("--secrets", "secrets_json", metavar="JSON|@FILE", default=None,
              help='The kind\'s secrets as a JSON object (write-only, stored encrypted, never printed): '
                   'webhook {"secret"}, email {"password"}, slack {"url"}. Prefer @file or @- to keep them out '
                   "of the shell's history.")
@click.option("--disabled", is_flag=True, help="Create it disabled (it is sent nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print the channel as JSON (as the API shows it).")
def channels_create_command(name: str, kind: str, config_json: str | None, secrets_json: str | None,
                            disabled: bool, as_json: bool) -> None:
    """Create a channel, validated exactly as the API validates it; print it as `channels list` shows it."""
    from chime import channels

    body: dict[str, Any] = {"name": name, "kind": kind, "enabled": not disabled}
    for key, value in (("config", json_option(config_json, "--config")),
                       ("secrets", json_option(secrets_json, "--secrets"))):
        if value is not None:
            body[key] = value
    with chime_errors(), unit_of_work():
        channel = channels.create_channel(body)
    echo_channels(channel_rows([channel]), as_json)


@channels_group.command("delete", short_help="Delete an alert channel (its deliveries stay).")
@click.argument("channel_id", metavar="ID", type=int)
def channels_delete_command(channel_id: int) -> None:
    """Delete channel ID; its deliveries stay, with its name, for the record."""
    from chime import channels

    channel = load_channel(channel_id)
    name = channel.name
    with chime_errors(), unit_of_work():
        channels.delete_channel(channel)
    click.echo(f"Deleted channel {channel_id} {name!r}")


@channels_group.command("mute", short_help="Mute a channel until a given time (or --clear the mute).")
@click.argument("channel_id", metavar="ID", type=int)
@click.option("--until", "until", default=None, metavar="ISO",
              help="Send it nothing until then: ISO 8601 with a UTC offset, e.g. 2030-01-31T09:00:00+01:00.")
@click.option("--clear", is_flag=True, help="End the mute now.")
def channels_mute_command(channel_id: int, until: str | None, clear: bool) -> None:
    """Mute channel ID until --until, or unmute it (--clear): as PATCH /api/channels/ID/ {"muted_until": ...}."""
    from chime import channels

    require_one_of(until, clear)
    channel = load_channel(channel_id)
    with chime_errors(), unit_of_work():
        channel = channels.update_channel(channel, {"muted_until": None if clear else until})
    echo_channels(channel_rows([channel]), False)


def require_one_of(until: str | None, clear: bool) -> None:
    if (until is None) == (not clear):
        raise click.UsageError("Give either --until ISO or --clear (one of them)")


@channels_group.command("test", short_help="Queue a test alert to a channel; print its delivery id.")
@click.argument("channel_id", type=int)
def channels_test_command(channel_id: int) -> None:
    from chime import channels

    channel = load_channel(channel_id)
    with chime_errors(), unit_of_work():
        delivery = channels.send_test(channel)
    click.echo(f"Queued test delivery {delivery.delivery_id} on the alerts queue (the alerts worker sends it)")


# -- alert rules and maintenance ----------------------------------------------------------------

alerts_group = AppGroup("alerts", help="Create, list and delete alert rules; list deliveries; turn maintenance "
                                         "(every alert muted) on or off.")
RULE_COLUMNS = ("ID", "TASK", "EVENTS", "CHANNELS", "ENABLED", "WINDOW S", "REPEAT H", "OVERRUN S")


@alerts_group.command("rules", short_help="List alert rules (default ones first).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /api/rules/ shows each).")
def alerts_rules_command(as_json: bool) -> None:
    from chime import alert_rules

    echo_rules(rule_rows(db.session.scalars(alert_rules.rule_query())), as_json)


def rule_rows(rules: Any) -> list[dict[str, Any]]:
    """The rules as GET /api/rules/ shows each."""
    from chime import alert_rules
    from chime.schemas.rule import RuleRead

    return [RuleRead.dump(alert_rules.rule_view(rule)) for rule in rules]


def echo_rules(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        echo_json(rows)
        return
    click.echo(render_table(RULE_COLUMNS, [
        [str(row["id"]), table_cell(row["task_name"] or "(default)"), ",".join(row["events"]),
         ",".join(str(c) for c in row["channel_ids"]), "yes" if row["enabled"] else "no",
         str(row["group_window_seconds"]), str(row["repeat_every_hours"] or "-"),
         str(row["overrun_after_seconds"] or "-")] for row in rows]))


def id_list(text: str) -> list[Any]:
    """"1,2" as [1, 2]; an item that is not a whole number is passed on as written, for the schema to name."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    return [int(item) if item.lstrip("-").isdigit() else item for item in items]


@alerts_group.command("rule-create", short_help="Create an alert rule (the body POST /api/rules/ takes).")
@click.option("--task", "task_id", type=int, default=None, help="The task the rule is for.")
@click.option("--default", "default", is_flag=True, help="A default rule: every task without its own, and the "
                                                          "engine's events.")
@click.option("--events", required=True, metavar="EVENT,...",
              help="Which events it sends, e.g. failed,recovered,missed,scheduler_down.")
@click.option("--channels", "channel_ids", required=True, metavar="ID,...", help="Where it sends them (channel ids).")
@click.option("--failing-threshold", type=int, default=None, help="`failing`: after this many failed runs in a row "
                                                                  "(default 3).")
@click.option("--repeat-every-hours", type=float, default=None,
              help="While a task stays failing, send again this often (default: once per failing streak).")
@click.option("--group-window-seconds", type=int, default=None,
              help="Group repeats of one task and event within this window (default 600; 0: no grouping).")
@click.option("--overrun-after-seconds", type=int, default=None,
              help="`overrun`: a run is overrunning after this long (default: CHIME_OVERRUN_AFTER_SECONDS, "
                   "else the task's timeout).")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@click.option("--json", "as_json", is_flag=True, help="Print the rule as JSON (as the API shows it).")
def alerts_rule_create_command(task_id: int | None, default: bool, events: str, channel_ids: str,
                               failing_threshold: int | None, repeat_every_hours: float | None,
                               group_window_seconds: int | None, overrun_after_seconds: int | None,
                               disabled: bool, as_json: bool) -> None:
    """Create a rule for --task ID or a --default one, validated exactly as the API validates it."""
    from chime import alert_rules

    if (task_id is None) == (not default):
        raise click.UsageError("Give either --task ID or --default (one of them)")
    body: dict[str, Any] = {"task_id": task_id, "events": [e.strip() for e in events.split(",") if e.strip()],
                            "channel_ids": id_list(channel_ids), "enabled": not disabled}
    optional = {"failing_threshold": failing_threshold, "repeat_every_hours": repeat_every_hours,
                "group_window_seconds": group_window_seconds, "overrun_after_seconds": overrun_after_seconds}
    body.update({name: value for name, value in optional.items() if value is not None})
    with chime_errors(), unit_of_work():
        rule = alert_rules.create_rule(body)
    echo_rules(rule_rows([rule]), as_json)


@alerts_group.command("rule-delete", short_help="Delete an alert rule.")
@click.argument("rule_id", metavar="ID", type=int)
def alerts_rule_delete_command(rule_id: int) -> None:
    """Delete rule ID."""
    from chime import alert_rules

    if not 1 <= rule_id <= MAX_ID:
        raise click.ClickException(f"No rule with id {rule_id} was found")
    with chime_errors(), unit_of_work():
        rule = alert_rules.get_rule(rule_id)
        name = alert_rules.rule_view(rule)["task_name"]
        alert_rules.delete_rule(rule)
    click.echo(f"Deleted rule {rule_id} ({'of ' + repr(name) if name else 'default'})")


DELIVERY_COLUMNS = ("DELIVERY", "STATUS", "CHANNEL", "EVENT", "TASK", "ATTEMPT", "AT", "OUTCOME", "CODE",
                    "REPLY / ERROR")
DELIVERY_STATUSES = click.Choice([status.value for status in DeliveryStatus])


@alerts_group.command("deliveries", short_help="List alert deliveries and their attempts, newest first.")
@click.option("--task", "task_id", type=click.IntRange(1, MAX_ID), default=None, help="Only this task's.")
@click.option("--channel", "channel_id", type=click.IntRange(1, MAX_ID), default=None, help="Only this channel's.")
@click.option("--status", type=DELIVERY_STATUSES, default=None, help="Only deliveries in this state.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /api/deliveries/ shows each).")
def alerts_deliveries_command(task_id: int | None, channel_id: int | None, status: str | None, limit: int,
                              as_json: bool) -> None:
    """List deliveries (one row per attempt; a delivery not yet tried has one row) as /api/deliveries/ reads them:
    time, channel, event, outcome, the HTTP status or SMTP reply code and text, the error (never a secret)."""
    from chime import channels
    from chime.models import Delivery
    from chime.schemas.channel import DeliveryRead

    query = channels.delivery_query(channel_id=channel_id, task_id=task_id)
    if status is not None:
        query = query.where(Delivery.status == DeliveryStatus(status))
    rows = [DeliveryRead.dump(delivery) for delivery in db.session.scalars(query.limit(limit))]
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("No deliveries.")
    else:
        click.echo(render_table(DELIVERY_COLUMNS, [line for row in rows for line in delivery_lines(row)]))


def delivery_lines(row: dict[str, Any]) -> list[list[str]]:
    """One table row per attempt of a delivery (as DeliveryRead shows it); one row when it has none yet."""
    task = "-" if row["task_id"] is None else str(row["task_id"])
    head = [row["delivery_id"], row["status"], table_cell(row["channel_name"], 30), row["event"], task]
    if not row["attempt_log"]:
        return [[*head, "-", row["created_at"], "not tried", "-", table_cell(row["error"] or "-", 60)]]
    return [[*head, str(a["attempt"]), a["attempted_at"], "ok" if a["ok"] else "failed",
             "-" if a["response_status"] is None else str(a["response_status"]),
             table_cell(" / ".join(text for text in (a["reply"], a["error"]) if text) or "-", 60)]
            for a in row["attempt_log"]]


@alerts_group.command("maintenance", short_help="Show, or turn on/off, maintenance (every alert muted).")
@click.argument("state", required=False, type=click.Choice(["on", "off"]))
@click.option("--reason", default="", help="Why (shown with the switch).")
def alerts_maintenance_command(state: str | None, reason: str) -> None:
    from chime import alert_rules

    if state is None:
        view = alert_rules.maintenance_view()
    else:
        with chime_errors(), unit_of_work():
            view = alert_rules.set_maintenance({"on": state == "on", "reason": reason})
    since = f" since {view['since']}" if view["on"] else ""
    click.echo(f"Maintenance is {'on' if view['on'] else 'off'}{since}{': ' + view['reason'] if view['reason'] else ''}"
               f"; {view['suppressed']} alert(s) suppressed by mutes and maintenance so far")


# -- runs: cancel a waiting one, stop a running one ----------------------------------------------

runs_group = AppGroup("runs", help="Cancel a run still waiting on its queue, or stop a running one.")


@runs_group.command("cancel", short_help="Cancel a waiting run (queue and job id as the Queues page shows them).")
@click.argument("queue")
@click.argument("job_id")
def runs_cancel_command(queue: str, job_id: str) -> None:
    """Take job JOB_ID off QUEUE (or out of the schedule) and record it CANCELLED; it never runs."""
    from chime import run_control
    from chime.timeutil import utcnow

    with chime_errors(), unit_of_work():
        execution = run_control.cancel_waiting(queue, job_id, utcnow())
    click.echo(f"Job {job_id} of task {execution.task_id} {execution.task_name!r} cancelled: run {execution.id}")


@runs_group.command("stop", short_help="Stop a running run; its worker records it CANCELLED within seconds.")
@click.argument("execution_id", metavar="ID", type=int)
def runs_stop_command(execution_id: int) -> None:
    """Ask the worker running run ID to stop it (see the README's "Cancel and stop")."""
    from chime import run_control
    from chime.validation import MAX_ID

    if not 1 <= execution_id <= MAX_ID:
        raise click.ClickException(f"No execution with id {execution_id} was found")
    with chime_errors(), unit_of_work():
        run_control.request_stop(execution_id)
    click.echo(f"Run {execution_id} asked to stop; it ends CANCELLED within a few seconds")
