"""Every /api/ operation as one row of a table: what the OpenAPI document says about it.

webapp.api.openapi turns the rows into the document's paths; the path parameters come from the path
itself, the query parameters from the models below, every schema from a component
(webapp.api.openapi.COMPONENTS), and the error answers from the statuses a row lists.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from chime.audit import ACTION_PATTERN as AUDIT_ACTION, OBJECT_TYPES as AUDIT_OBJECT_TYPES
from chime.config import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT
from chime.models import ScheduleType, Source, Status, Trigger
from chime.schemas.cron import DEFAULT_PREVIEW_COUNT, DEFAULT_TIMEZONE
from chime.schemas.task import NO_NUL, TIMEZONE_PATTERN
from chime.triggers import (
    MAX_CRON_LENGTH_CHARS,
    MAX_INSTANT_LENGTH_CHARS,
    MAX_PREVIEW_COUNT,
    MAX_TIMEZONE_LENGTH_CHARS,
)
from chime.validation import MAX_ID
from webapp.api.common import MAX_OFFSET
from webapp.queries import MAX_GRAPH_NODES, MAX_SEARCH_LENGTH_CHARS


@dataclass(frozen=True)
class Reply:
    """One documented answer: a description, and the schema of its JSON body (a component name,
    or an inline schema whose `items` may name one), if it has a body."""

    description: str
    schema: str | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)  # header name -> description
    media: dict[str, str | dict[str, Any]] = field(default_factory=dict)  # other bodies than JSON: type -> schema


@dataclass(frozen=True)
class Body:
    """A JSON request body: its component and named examples (name -> (summary, value))."""

    schema: str
    description: str
    examples: dict[str, tuple[str, dict[str, Any]]]
    required: bool = True  # False: the request may come without a body


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    replies: dict[int, Reply]
    errors: tuple[int, ...] = ()  # the error statuses it may answer (401 is added unless public)
    query: type[BaseModel] | None = None
    body: Body | None = None
    public: bool = False  # no bearer token needed
    path_strings: tuple[str, ...] = ()  # path parameters that are RQ job ids (the others are row ids)


# --------------------------------------------------------------------------- query parameters
# Optional arguments default to None here, which the document leaves out ("absent: no filter").


class Pagination(BaseModel):
    limit: int = Field(DEFAULT_PAGE_LIMIT, ge=1, le=MAX_PAGE_LIMIT, description="Page size")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Number of items to skip")


class TaskFilters(Pagination):
    status: Status = Field(None, description="Only tasks with this status (case-insensitive)")
    enabled: bool = Field(None, description="Only enabled (true) or disabled (false) tasks")
    schedule_type: ScheduleType = Field(None, description="Only tasks of this schedule type (case-insensitive)")
    search: str = Field(None, pattern=NO_NUL, description=(
        "Only tasks whose name or job contains this text (case-insensitive, literal; "
        f"the first {MAX_SEARCH_LENGTH_CHARS} characters are used)"))


class LogSelection(BaseModel):
    search: str = Field(None, pattern=NO_NUL, description=(
        "Only executions whose message or task name contains this text (case-insensitive by Unicode's rules, "
        f"literal: % and _ are no wildcards; the first {MAX_SEARCH_LENGTH_CHARS} characters are used)"))
    status: Status = Field(None, description="Only executions with this status (case-insensitive)")
    trigger: Trigger = Field(None, description="Only executions started by this trigger (case-insensitive)")
    since: datetime = Field(None, description=(
        "Only executions created at or after this instant (ISO-8601; UTC if no offset)"))
    until: datetime = Field(None, description="Only executions created before this instant (ISO-8601; UTC if no offset)")


class TaskLogFilters(Pagination, LogSelection):
    pass


class LogFilters(TaskLogFilters):
    task_id: int = Field(None, ge=1, le=MAX_ID, description="Only this task's")


class LogExportQuery(LogSelection):
    task_id: int = Field(None, ge=1, le=MAX_ID, description="Only this task's")
    format: Literal["csv", "json"] = Field("csv", description=(
        "csv (a header line, then one line per execution; text starting with = + - @ or a tab gets a leading ' "
        "so a spreadsheet does not run it as a formula) or json (one array of Execution)"))


class GraphQuery(BaseModel):
    isolated: bool = Field(None, description="Also the tasks with neither parents nor children (default: false)")
    limit: int = Field(MAX_GRAPH_NODES, ge=1, le=MAX_GRAPH_NODES, description="At most this many tasks, by id")


class NotificationFilters(Pagination):
    unread: bool = Field(None, description="Only unread (true) or read (false) notifications")


class TaskAuditFilters(Pagination):
    actor: str = Field(None, pattern=NO_NUL, description="Only events whose actor's name contains this text "
                                                         "(case-insensitive, literal)")
    action: str = Field(None, pattern=f"^{AUDIT_ACTION.pattern}$", description=(
        "Only this action (create, update, delete, enable, disable, run_now, pause, retry, ...)"))
    source: Source = Field(None, description="Only events from there: admin, api, cli or engine")
    since: datetime = Field(None, description="Only events at or after this instant (ISO-8601; UTC if no offset)")
    until: datetime = Field(None, description="Only events before this instant (ISO-8601; UTC if no offset)")
    search: str = Field(None, pattern=NO_NUL, description=(
        "Only events whose object's or actor's name contains this text (case-insensitive, literal)"))


class AuditFilters(TaskAuditFilters):
    object_type: Literal[AUDIT_OBJECT_TYPES] = Field(None, description="Only events about this kind of object")
    object_id: str = Field(None, max_length=64, pattern=NO_NUL, description="Only events about the object with "
                                                                           "this id (with object_type)")


class CronPreviewQuery(BaseModel):
    cron: str = Field(max_length=MAX_CRON_LENGTH_CHARS, description="The cron expression", examples=["0 9 * * 1-5"])
    timezone: str = Field(DEFAULT_TIMEZONE, max_length=MAX_TIMEZONE_LENGTH_CHARS, pattern=TIMEZONE_PATTERN,
                          description="IANA time zone the expression is read in", examples=["Europe/Berlin"])
    count: int = Field(DEFAULT_PREVIEW_COUNT, ge=1, le=MAX_PREVIEW_COUNT, description="How many fire times",
                       examples=[3])
    from_: str = Field(None, alias="from", max_length=MAX_INSTANT_LENGTH_CHARS, json_schema_extra={"format": "date-time"},
                       examples=["2026-10-24T12:00:00+02:00"], description=(
                           "List the fire times after this instant instead of now, e.g. just before a DST change. "
                           "ISO 8601 with a UTC offset (`Z`, `+02:00`); a time without one is a 400"))


# --------------------------------------------------------------------------- request bodies

TASK_EXAMPLES = {
    "interval": ("Echo a message every minute",
                 {"name": "heartbeat", "job": "echo", "args": {"message": "still here"},
                  "schedule_type": "INTERVAL", "interval_seconds": 60}),
    "cron": ("Call a URL at 09:00 on weekdays, Berlin time",
             {"name": "morning-report", "job": "http_request",
              "args": {"url": "https://example.com/report", "method": "POST"}, "schedule_type": "CRON",
              "cron": "0 9 * * 1-5", "timezone": "Europe/Berlin", "max_retries": 5, "queue": "high",
              "notify": "ON_FAILURE"}),
    "one_time": ("Run once at a given instant",
                 {"name": "one-off", "job": "noop", "schedule_type": "ONE_TIME", "run_at": "2031-06-01T09:00:00Z"}),
}
PATCH_EXAMPLES = {
    "disable": ("Disable a task", {"enabled": False}),
    "reschedule": ("Move a task to a cron schedule", {"schedule_type": "CRON", "cron": "*/15 * * * *"}),
}
WHOLE_TASK = Body("TaskInput", "The whole task", TASK_EXAMPLES)
RUN_EXAMPLES = {"args": ("Echo another message this once", {"args": {"message": "run by hand"}})}

USER_EXAMPLES = {"operator": ("An operator", {"username": "ada", "password": "a long passphrase",
                                           "role": "operator"})}
USER_PATCH_EXAMPLES = {
    "promote": ("Make a user an admin", {"role": "admin"}),
    "disable": ("Disable a user (their sessions end, their tokens are refused)", {"active": False}),
    "reset": ("Reset a password", {"password": "a new long passphrase"}),
}
TOKEN_EXAMPLES = {"mine": ("A token of my own", {"name": "ci"}),
                  "theirs": ("A token of another user (admins only)", {"name": "deploy", "user_id": 2})}


class TokenFilters(Pagination):
    user: int = Field(None, ge=1, le=MAX_ID, description="Whose tokens (default: the caller's; another "
                                                         "user's for admins only)")


# --------------------------------------------------------------------------- the operations

class QueuedJobsPage(BaseModel):
    limit: int = Field(50, ge=1, le=200, description="Page size")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Number of jobs to skip (from the next one to run)")


QUEUE_OPERATIONS = (  # webapp/api/queues.py
    Operation("get", "/api/queues/", "listQueues", "queues", "List Chime's queues and how many jobs wait on each",
              {200: Reply("The queues", {"type": "array", "items": "Queue"})}, errors=(503,)),
    Operation("get", "/api/queues/{queue}/jobs/", "listQueuedJobs", "queues",
              "List the jobs waiting on a queue, the next to run first, with their task and occurrence",
              {200: Reply("A page of waiting jobs", "QueuedJobPage")}, errors=(400, 404, 503), query=QueuedJobsPage,
              path_strings=("queue",)),
    Operation("post", "/api/queues/{queue}/jobs/{job_id}/cancel/", "cancelQueuedJob", "queues",
              "Cancel an occurrence waiting on its queue (or in the schedule): recorded CANCELLED, never run",
              {200: Reply("The occurrence's CANCELLED execution", "Execution")}, errors=(404, 409, 503),
              path_strings=("queue", "job_id")),
    Operation("post", "/api/logs/{execution_id}/stop/", "stopRun", "logs",
              "Stop a running run: its worker interrupts the job within seconds and records it CANCELLED",
              {202: Reply("The stop was requested; the run (still RUNNING) ends CANCELLED shortly", "Execution",
                          headers={"Location": "The execution: GET it until its status is CANCELLED"})},
              errors=(404, 409, 503)),
    Operation("get", "/api/workers/", "listWorkers", "queues",
              "List the registered workers: state, current run, since when, job counts",
              {200: Reply("The workers", {"type": "array", "items": "Worker"})}, errors=(503,)),
)


TASK = Reply("The task", "Task")
WRITE_ERRORS = (400, 404, 409, 413, 415)
EXECUTIONS = Reply("A page of executions", "ExecutionPage")
USER = Reply("The user", "User")
USER_OPERATIONS = (
    Operation("get", "/api/users/", "listUsers", "users", "List users by name (admins only)",
              {200: Reply("A page of users", "UserPage")}, errors=(400, 403), query=Pagination),
    Operation("post", "/api/users/", "createUser", "users", "Create a user with a role and a password (admins only)",
              {201: Reply("The created user", "User", headers={"Location": "URL of the new user"})},
              errors=(400, 403, 409, 413, 415), body=Body("UserInput", "The new user", USER_EXAMPLES)),
    Operation("get", "/api/users/{user_id}/", "getUser", "users", "Get a user (admins only)", {200: USER},
              errors=(403, 404)),
    Operation("patch", "/api/users/{user_id}/", "updateUser", "users",
              "Change a user's role, enable or disable them, or reset their password (admins only; "
              "409 for the last active admin)", {200: USER}, errors=(400, 403, 404, 409, 413, 415),
              body=Body("UserPatch", "The changes", USER_PATCH_EXAMPLES)),
    Operation("delete", "/api/users/{user_id}/", "deleteUser", "users",
              "Delete a user and their tokens (admins only; 409 for the last active admin)",
              {204: Reply("Deleted")}, errors=(403, 404, 409)),
    Operation("get", "/api/tokens/", "listTokens", "users", "List the caller's API tokens (never the tokens "
              "themselves)", {200: Reply("A page of tokens", "TokenPage")}, errors=(400, 403), query=TokenFilters),
    Operation("post", "/api/tokens/", "createToken", "users", "Create an API token; the answer shows it this once",
              {201: Reply("The token, with the token itself", "TokenCreated")}, errors=(400, 403, 404, 413, 415),
              body=Body("TokenInput", "The new token", TOKEN_EXAMPLES)),
    Operation("delete", "/api/tokens/{token_id}/", "revokeToken", "users",
              "Revoke one of the caller's tokens (an admin: anyone's)", {204: Reply("Revoked")}, errors=(404,)),
)

CHANNEL_EXAMPLES = {
    "webhook": ("A signed webhook", {"name": "ops-webhook", "kind": "webhook",
                                     "config": {"url": "https://hooks.example.com/chime"},
                                     "secrets": {"secret": "a long random signing secret"}}),
    "email": ("E-mail over STARTTLS with a login", {
        "name": "ops-mail", "kind": "email",
        "config": {"host": "smtp.example.com", "port": 587, "security": "starttls", "username": "chime",
                   "from_address": "chime@example.com", "to": ["ops@example.com"]},
        "secrets": {"password": "the SMTP password"}}),
    "slack": ("A Slack incoming webhook", {"name": "ops-slack", "kind": "slack",
                                           "secrets": {"url": "https://hooks.slack.com/services/T000/B000/XXXX"}}),
}
CHANNEL_PATCH_EXAMPLES = {
    "mute": ("Mute a channel until an instant", {"muted_until": "2031-06-01T09:00:00Z"}),
    "rotate": ("Replace the signing secret", {"secrets": {"secret": "a new long random secret"}}),
}


class DeliveryFilters(Pagination):
    task_id: int = Field(None, ge=1, le=MAX_ID, description="Only the deliveries of this task's alerts")
    channel_id: int = Field(None, ge=1, le=MAX_ID, description="Only the deliveries to this channel")


CHANNEL = Reply("The channel (its secrets only as set / not set)", "Channel")
CHANNEL_OPERATIONS = (  # webapp/api/channels.py
    Operation("get", "/api/channels/", "listChannels", "alerts", "List alert channels by name",
              {200: Reply("A page of channels", "ChannelPage")}, errors=(400,), query=Pagination),
    Operation("post", "/api/channels/", "createChannel", "alerts",
              "Create a channel (admins only): webhook, email or slack; secrets are write-only, stored encrypted",
              {201: Reply("The created channel", "Channel", headers={"Location": "URL of the new channel"})},
              errors=(400, 403, 409, 413, 415), body=Body("ChannelInput", "The new channel", CHANNEL_EXAMPLES)),
    Operation("get", "/api/channels/{channel_id}/", "getChannel", "alerts", "Get a channel", {200: CHANNEL},
              errors=(404,)),
    Operation("patch", "/api/channels/{channel_id}/", "updateChannel", "alerts",
              "Change a channel (admins only): a secret given replaces the stored one, \"\" keeps it, null removes it",
              {200: CHANNEL}, errors=(400, 403, 404, 409, 413, 415),
              body=Body("ChannelPatch", "The changes", CHANNEL_PATCH_EXAMPLES)),
    Operation("delete", "/api/channels/{channel_id}/", "deleteChannel", "alerts",
              "Delete a channel (admins only); its deliveries stay, with its name", {204: Reply("Deleted")},
              errors=(403, 404)),
    Operation("post", "/api/channels/{channel_id}/test/", "testChannel", "alerts",
              "Send a test alert to the channel (operators; even when disabled or muted)",
              {202: Reply("The test delivery was queued on the alerts queue", "ChannelTestResult")},
              errors=(403, 404)),
    Operation("get", "/api/channels/{channel_id}/deliveries/", "listChannelDeliveries", "alerts",
              "A channel's deliveries, newest first, each with every attempt",
              {200: Reply("A page of deliveries", "DeliveryPage")}, errors=(400, 404), query=Pagination),
    Operation("get", "/api/deliveries/", "listDeliveries", "alerts",
              "Alert deliveries, newest first, each with every attempt (filter by task or channel)",
              {200: Reply("A page of deliveries", "DeliveryPage")}, errors=(400,), query=DeliveryFilters),
)

RULE_EXAMPLES = {
    "default": ("A default rule: final failures and engine events to a channel",
                {"events": ["failed", "recovered", "scheduler_down", "no_workers"], "channel_ids": [1]}),
    "task": ("A task's own rule: failing after 5 in a row, repeated every 6 hours",
             {"task_id": 1, "events": ["failing", "recovered"], "channel_ids": [1], "failing_threshold": 5,
              "repeat_every_hours": 6}),
}


class RuleFilters(Pagination):
    task_id: int = Field(None, ge=1, le=MAX_ID, description="Only this task's own rules")
    default: bool = Field(None, description="true: only the default rules")


RULE = Reply("The rule", "Rule")
MAINTENANCE = Reply("The maintenance switch and how many alerts mutes and maintenance held back", "Maintenance")
RULE_OPERATIONS = (  # webapp/api/rules.py
    Operation("get", "/api/rules/", "listRules", "alerts", "List alert rules: the default ones first, then per task",
              {200: Reply("A page of rules", "RulePage")}, errors=(400,), query=RuleFilters),
    Operation("post", "/api/rules/", "createRule", "alerts",
              "Create a rule (admins only): a task's own (task_id) or a default one (task_id null)",
              {201: Reply("The created rule", "Rule", headers={"Location": "URL of the new rule"})},
              errors=(400, 403, 413, 415), body=Body("RuleInput", "The new rule", RULE_EXAMPLES)),
    Operation("get", "/api/rules/{rule_id}/", "getRule", "alerts", "Get a rule", {200: RULE}, errors=(404,)),
    Operation("patch", "/api/rules/{rule_id}/", "updateRule", "alerts", "Change a rule (admins only)", {200: RULE},
              errors=(400, 403, 404, 413, 415),
              body=Body("RulePatch", "The changes", {"mute-summaries": ("Group for an hour",
                                                                        {"group_window_seconds": 3600})})),
    Operation("delete", "/api/rules/{rule_id}/", "deleteRule", "alerts", "Delete a rule (admins only)",
              {204: Reply("Deleted")}, errors=(403, 404)),
    Operation("get", "/api/alerts/maintenance/", "getMaintenance", "alerts", "Whether maintenance mutes every alert",
              {200: MAINTENANCE}),
    Operation("put", "/api/alerts/maintenance/", "setMaintenance", "alerts",
              "Turn maintenance (every alert muted) on or off (admins only)", {200: MAINTENANCE},
              errors=(400, 403, 413, 415),
              body=Body("MaintenanceInput", "The switch", {"on": ("Start maintenance", {"on": True,
                                                                                      "reason": "database upgrade"}),
                                                           "off": ("End it", {"on": False})})),
    Operation("put", "/api/tasks/{task_id}/alerts-mute/", "muteTaskAlerts", "alerts",
              "Mute a task's alerts until an instant, or unmute it with null (admins only)",
              {200: Reply("The task's mute", "TaskMute")}, errors=(400, 403, 404, 413, 415),
              body=Body("TaskMuteInput", "Until when", {"mute": ("Mute until an instant",
                                                                 {"until": "2031-06-01T09:00:00Z"}),
                                                        "unmute": ("Unmute", {"until": None})})),
)


class DeleteTaskQuery(BaseModel):
    detach: bool = Field(None, description=(
        "true: first remove the task from the dependencies of the tasks that depend on it (each one an "
        "audited update), then delete it, in one transaction. Without it, such a task is a 409 naming them"))


PAUSE_EXAMPLES = {
    "until": ("Pause until a given instant", {"reason": "database migration", "resume_at": "2031-06-01T09:00:00Z"}),
    "open": ("Pause until someone resumes it", {"reason": "the partner API is down"}),
}
BULK_EXAMPLES = {
    "pause": ("Pause three tasks", {"action": "pause", "ids": [1, 2, 3], "reason": "maintenance window"}),
    "run_now": ("Run two tasks now", {"action": "run_now", "ids": [4, 5]}),
    "delete": ("Delete two tasks (admins only)", {"action": "delete", "ids": [6, 7]}),
}
CLONE_EXAMPLES = {"default": ("Name it '<name> (copy)'", {}), "named": ("Name the copy", {"name": "nightly-2"})}
CONTROL_OPERATIONS = (
    Operation("post", "/api/tasks/{task_id}/pause/", "pauseTask", "tasks",
              "Pause a task: disable it with a reason, optionally until resume_at (then it resumes by itself)",
              {200: TASK}, errors=(400, 403, 404, 413, 415),
              body=Body("PauseInput", "Why, and until when", PAUSE_EXAMPLES)),
    Operation("post", "/api/tasks/{task_id}/resume/", "resumeTask", "tasks",
              "Resume a task: clear its pause and enable it", {200: TASK}, errors=(403, 404)),
    Operation("post", "/api/tasks/bulk/", "bulkTasks", "tasks",
              "Enable, disable, pause, resume, run now or delete many tasks, all or nothing (delete needs the "
              "admin role; at most 500 ids; unknown ids are a 400 naming them, a task others depend on a 409)",
              {200: Reply("What was done to each task", "BulkResult")}, errors=(400, 403, 409, 413, 415, 503),
              body=Body("BulkInput", "The action and the tasks", BULK_EXAMPLES)),
    Operation("post", "/api/tasks/{task_id}/clone/", "cloneTask", "tasks",
              "Copy a task's definition (dependencies too) into a new task, created disabled",
              {201: Reply("The copy", "Task", headers={"Location": "URL of the copy"})},
              errors=(400, 403, 404, 409, 413, 415),
              body=Body("CloneInput", "The copy's name (optional; the body may be empty)", CLONE_EXAMPLES)),
)

OPERATIONS = (
    Operation("get", "/api/tasks/", "listTasks", "tasks", "List tasks", {200: Reply("A page of tasks", "TaskPage")},
              errors=(400,), query=TaskFilters),
    Operation("post", "/api/tasks/", "createTask", "tasks", "Create a task",
              {201: Reply("The created task", "Task", headers={"Location": "URL of the new task"})},
              errors=(400, 409, 413, 415), body=Body("TaskInput", "The new task", TASK_EXAMPLES)),
    Operation("get", "/api/tasks/{task_id}/", "getTask", "tasks", "Get a task", {200: TASK}, errors=(404,)),
    Operation("put", "/api/tasks/{task_id}/", "replaceTask", "tasks",
              "Replace a task (omitted fields get their defaults)", {200: TASK}, errors=WRITE_ERRORS, body=WHOLE_TASK),
    Operation("patch", "/api/tasks/{task_id}/", "updateTask", "tasks", "Change some fields of a task", {200: TASK},
              errors=WRITE_ERRORS, body=Body("TaskPatch", "The fields to change", PATCH_EXAMPLES)),
    Operation("delete", "/api/tasks/{task_id}/", "deleteTask", "tasks",
              "Delete a task (one that others depend on: with ?detach=true, else a 409 naming them)",
              {204: Reply("Deleted")}, errors=(400, 404, 409), query=DeleteTaskQuery),
    Operation("post", "/api/tasks/{task_id}/toggle/", "toggleTask", "tasks",
              "Enable a disabled task or disable an enabled one", {200: TASK}, errors=(404,)),
    Operation("post", "/api/tasks/{task_id}/run/", "runTask", "tasks",
              "Queue one manual run now, enabled or not; an optional body overrides its arguments for this run only",
              {202: Reply("The run was queued", "RunResult")}, errors=(400, 404, 413, 415, 503),
              body=Body("RunInput", "Optional: arguments for this run instead of the task's", RUN_EXAMPLES,
                        required=False)),
    Operation("get", "/api/tasks/graph/", "getTaskGraph", "tasks",
              "The dependency graph: tasks with their latest outcome, and which task waits for which",
              {200: Reply("The graph (tasks without dependencies only counted unless isolated=true)", "TaskGraph")},
              errors=(400,), query=GraphQuery),
    Operation("get", "/api/tasks/{task_id}/logs/", "listTaskLogs", "logs",
              "List the executions of one task, newest first", {200: EXECUTIONS}, errors=(400, 404),
              query=TaskLogFilters),
    Operation("get", "/api/logs/", "listLogs", "logs", "List executions, newest first", {200: EXECUTIONS},
              errors=(400,), query=LogFilters),
    Operation("get", "/api/logs/export/", "exportLogs", "logs",
              "Download the filtered log, newest first, as CSV or JSON (streamed: any number of rows)",
              {200: Reply("The executions, as an attachment", headers={"Content-Disposition": "attachment; filename=..."},
                          media={"text/csv": {"type": "string"},
                                 "application/json": {"type": "array", "items": "Execution"}})},
              errors=(400,), query=LogExportQuery),
    Operation("get", "/api/logs/{execution_id}/", "getLog", "logs", "Get one execution, with its traceback",
              {200: Reply("The execution", "ExecutionDetail")}, errors=(404,)),
    Operation("post", "/api/logs/{execution_id}/retry/", "retryLog", "logs",
              "Retry a failed run now: queue the next attempt of its occurrence (trigger RETRY)",
              {202: Reply("The retry was queued", "RetryResult")}, errors=(404, 409, 503)),
    Operation("get", "/api/audit/", "listAudit", "audit",
              "Search the audit trail (who changed what, when, from where), newest first",
              {200: Reply("A page of audit events", "AuditEventPage")}, errors=(400,), query=AuditFilters),
    Operation("get", "/api/tasks/{task_id}/audit/", "listTaskAudit", "audit",
              "A task's change history (and the operator actions on it), newest first",
              {200: Reply("A page of audit events", "AuditEventPage")}, errors=(400, 404), query=TaskAuditFilters),
    Operation("get", "/api/notifications/", "listNotifications", "notifications", "List notifications, newest first",
              {200: Reply("A page of notifications", "NotificationPage")}, errors=(400,), query=NotificationFilters),
    Operation("post", "/api/notifications/{notification_id}/read/", "markNotificationRead", "notifications",
              "Mark one notification read", {200: Reply("The notification", "Notification")}, errors=(404,)),
    Operation("post", "/api/notifications/read-all/", "markAllNotificationsRead", "notifications",
              "Mark every notification read", {200: Reply("How many were marked", "ReadAllResult")}),
    Operation("post", "/api/reconcile/", "runReconcile", "system",
              "Queue one reconcile pass (a worker runs it) and say where to read its report",
              {202: Reply("The pass is queued (or the one already queued or running answers)", "ReconcileRequest",
                          headers={"Location": "Where to read the pass: GET it until it has ended"})},
              errors=(503,)),
    Operation("get", "/api/reconcile/{job_id}/", "getReconcile", "system",
              "Where a requested reconcile pass stands, and its report once finished",
              {200: Reply("The pass", "ReconcileRequest")}, errors=(404, 503), path_strings=("job_id",)),
    Operation("get", "/api/stats/", "getStats", "system", "Counts, next runs and engine state",
              {200: Reply("The statistics (Redis parts are null when Redis is down)", "Stats")}),
    Operation("get", "/api/jobs/", "listJobs", "system", "List the registered jobs and their parameters",
              {200: Reply("The jobs, by name", {"type": "array", "items": "Job"})}),
    Operation("get", "/api/cron/preview/", "previewCron", "system",
              "Describe a cron expression and list its next fire times",
              {200: Reply("The preview", "CronPreview")}, errors=(400,), query=CronPreviewQuery),
    Operation("get", "/api/health/", "getHealth", "system", "The whole service, for an uptime monitor (no token needed)",
              {200: Reply("The database and Redis answer, a scheduler dispatches and a worker is registered", "Health"),
               503: Reply("Something is down: `reasons` names it", "Health")}, public=True),
    Operation("get", "/api/health/ready/", "getReadiness", "system",
              "Readiness of this web instance, for a load balancer (no token needed)",
              {200: Reply("The database and Redis answer", "Readiness"),
               503: Reply("The database or Redis is unreachable: `reasons` names it", "Readiness")}, public=True),
    Operation("get", "/api/health/live/", "getLiveness", "system",
              "Liveness: the web process answers; nothing is checked (no token needed)",
              {200: Reply("The process answers", "Liveness")}, public=True),
    Operation("get", "/api/openapi.json", "getOpenApi", "system", "This OpenAPI document",
              {200: Reply("The OpenAPI 3.0 document", {"type": "object"})}),
    *CONTROL_OPERATIONS,
    *USER_OPERATIONS,
    *QUEUE_OPERATIONS,
    *CHANNEL_OPERATIONS,
    *RULE_OPERATIONS,
)
