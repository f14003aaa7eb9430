"""The OpenAPI 3.0.3 document describing every /api/ route.

The document is plain data built by the small helpers below; its bounds and enums come
from the constants the routes and ``chime.validation`` enforce, so the two cannot drift.
"""
from __future__ import annotations

import copy
from typing import Any

import jobs.registry as registry
from scheduler.health import SCHEDULER_STALE_AFTER_SECONDS
from chime.triggers import (
    MAX_CRON_LENGTH_CHARS,
    MAX_INSTANT_LENGTH_CHARS,
    MAX_PREVIEW_COUNT,
    MAX_TIMEZONE_LENGTH_CHARS,
)
from chime.config import DEFAULT_PAGE_LIMIT, MAX_CONTENT_LENGTH_BYTES, MAX_PAGE_LIMIT
from chime.models import QUEUE_NAMES, Level, NotifyPolicy, Overlap, ScheduleType, Status, Trigger
from webapp.stats import NEXT_RUNS_COUNT
from chime.validation import (
    MAX_BACKOFF_SECONDS,
    MAX_DEPENDENCIES,
    MAX_DESCRIPTION_LENGTH,
    MAX_GRACE_SECONDS,
    MAX_ID,
    MAX_INTERVAL_SECONDS,
    MAX_NAME_LENGTH,
    MAX_RETRIES,
    MAX_TIMEOUT_SECONDS,
)

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1"
BEARER = "bearerAuth"
MAX_OFFSET = 10**12
PAGE_LINK = ("Link to the {} page, or null on the {}: CHIME_PUBLIC_URL + path when that is set, "
             "else the path alone (never built from the Host header)")
JSON = "application/json"

STATUSES = [s.value for s in Status]
TRIGGERS = [t.value for t in Trigger]
SCHEDULE_TYPES = [t.value for t in ScheduleType]
LEVELS = [level.value for level in Level]
ERROR_CODES = [
    "bad_request", "validation_error", "unauthorized", "forbidden", "not_found", "method_not_allowed",
    "conflict", "payload_too_large", "unsupported_media_type", "too_many_requests", "internal_error",
    "service_unavailable", "error",
]
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK_NO_NUL = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
TIMEZONE_PATTERN = "^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"
CHECK_RESULT_PATTERN = "^(ok|error: .+)$"
REASONS_TEXT = "The components that are not `ok`, empty when the status is `ok`"

# --------------------------------------------------------------------------- schema helpers


def ref(name: str) -> dict[str, str]:
    """Point at a schema under components/schemas."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """Allow null too (an enum lists null as well, as OpenAPI 3.0.3 asks)."""
    result = {**schema, "nullable": True}
    if "enum" in result and None not in result["enum"]:
        result["enum"] = [*result["enum"], None]
    return result


def integer(minimum: int | None = None, maximum: int | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", **extra}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


def boolean(**extra: Any) -> dict[str, Any]:
    return {"type": "boolean", **extra}


def enum(values: list[str] | tuple[str, ...], **extra: Any) -> dict[str, Any]:
    return {"type": "string", "enum": list(values), **extra}


def date_time(**extra: Any) -> dict[str, Any]:
    return {"type": "string", "format": "date-time", **extra}


def array(items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **extra}


def obj(properties: dict[str, Any], *, required: list[str] | tuple[str, ...] | str = "all",
        **extra: Any) -> dict[str, Any]:
    """An object schema; by default every property is required (the API always sends it)."""
    names = list(properties) if required == "all" else list(required)
    schema: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if names:
        schema["required"] = names
    return schema


def page(item: str) -> dict[str, Any]:
    """One page of a paginated list, as webapp.api.common.paginate builds it."""
    return obj({
        "count": integer(0, description="Number of items matching the filters, over all pages"),
        "next": nullable(string(format="uri-reference", description=PAGE_LINK.format("next", "last"))),
        "previous": nullable(string(format="uri-reference", description=PAGE_LINK.format("previous", "first"))),
        "results": array(ref(item), maxItems=MAX_PAGE_LIMIT),
    })


# --------------------------------------------------------------------------- operation helpers


def query(name: str, schema: dict[str, Any], description: str, *, required: bool = False,
          example: Any = None) -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": required, "description": description, "schema": schema}
    if example is not None:
        parameter["example"] = example
    return parameter


def path_id(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": f"Id of the {kind}",
            "schema": integer(1, MAX_ID), "example": 1}


PAGINATION = [
    query("limit", integer(1, MAX_PAGE_LIMIT, default=DEFAULT_PAGE_LIMIT), "Page size"),
    query("offset", integer(0, MAX_OFFSET, default=0), "Number of items to skip"),
]

LOG_FILTERS = [
    query("status", enum(STATUSES), "Only executions with this status (case-insensitive)"),
    query("trigger", enum(TRIGGERS), "Only executions started by this trigger (case-insensitive)"),
    query("since", date_time(), "Only executions created at or after this instant (ISO-8601; UTC if no offset)"),
    query("until", date_time(), "Only executions created before this instant (ISO-8601; UTC if no offset)"),
]


def body(schema_name: str, description: str, examples: dict[str, Any]) -> dict[str, Any]:
    named = {name: {"summary": summary, "value": value} for name, (summary, value) in examples.items()}
    return {"required": True, "description": description,
            "content": {JSON: {"schema": ref(schema_name), "examples": named}}}


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


def ok(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def error(name: str) -> dict[str, str]:
    """Point at a shared error response under components/responses."""
    return {"$ref": f"#/components/responses/{name}"}


ERRORS_BY_STATUS = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    503: "ServiceUnavailable",
}


def operation(operation_id: str, tag: str, summary: str, responses: dict[int, dict[str, Any]], *,
              errors: tuple[int, ...] = (), parameters: list[dict[str, Any]] | None = None,
              request_body: dict[str, Any] | None = None, public: bool = False) -> dict[str, Any]:
    """One operation; `errors` lists the error statuses it can answer besides 401."""
    statuses = dict(responses)
    for status in sorted(set(errors) | ({401} if not public else set())):
        statuses[status] = error(ERRORS_BY_STATUS[status])
    op: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "responses": {str(status): statuses[status] for status in sorted(statuses)},
    }
    if parameters:
        op["parameters"] = parameters
    if request_body:
        op["requestBody"] = request_body
    if public:
        op["security"] = []
    return op


# --------------------------------------------------------------------------- components


def task_properties(*, for_input: bool) -> dict[str, Any]:
    """The task fields; for input every optional field may be null (meaning: its default)."""

    def optional(schema: dict[str, Any]) -> dict[str, Any]:
        return nullable(schema) if for_input else schema

    job = enum([spec.name for spec in registry.all_jobs()]) if for_input else string()
    job["description"] = "Name of a registered job (GET /api/jobs/ lists them)"
    return {
        "id": integer(1, readOnly=True),
        "name": string(minLength=1, maxLength=MAX_NAME_LENGTH, pattern=NOT_BLANK_NO_NUL,
                       description="Unique name; surrounding whitespace is trimmed"),
        "description": optional(string(maxLength=MAX_DESCRIPTION_LENGTH, pattern=NO_NUL, default="")),
        "job": job,
        "args": optional({"type": "object", "additionalProperties": True, "default": {},
                          "description": "Arguments for the job, checked against its parameters"}),
        "schedule_type": enum(SCHEDULE_TYPES),
        "run_at": nullable(date_time(description="ONE_TIME only: when to run (without an offset: in `timezone`)")),
        "cron": nullable(string(maxLength=MAX_CRON_LENGTH_CHARS,
                                description="CRON only: 5-field expression or an alias such as @daily")),
        "interval_seconds": nullable(integer(1, MAX_INTERVAL_SECONDS, description="INTERVAL only")),
        "timezone": optional(string(maxLength=MAX_TIMEZONE_LENGTH_CHARS, pattern=TIMEZONE_PATTERN, default="UTC",
                                    description="IANA time zone name such as Europe/Berlin")),
        "start_at": nullable(date_time(description="CRON and INTERVAL: first instant the task may fire")),
        "end_at": nullable(date_time(description="CRON and INTERVAL: last instant; later than start_at")),
        "enabled": optional(boolean(default=True)),
        "max_retries": optional(integer(0, MAX_RETRIES, default=3)),
        "retry_backoff_seconds": optional(integer(1, MAX_BACKOFF_SECONDS, default=60)),
        "timeout_seconds": optional(integer(1, MAX_TIMEOUT_SECONDS, default=300)),
        "depends_on": optional(array(integer(1, MAX_ID), maxItems=MAX_DEPENDENCIES, default=[],
                                     description="Ids of the tasks this one depends on")),
        "overlap": optional(enum([o.value for o in Overlap], default=Overlap.SKIP.value)),
        "misfire_grace_seconds": optional(integer(0, MAX_GRACE_SECONDS, default=300)),
        "queue": optional(enum(QUEUE_NAMES, default="default")),
        "notify": optional(enum([n.value for n in NotifyPolicy], default=NotifyPolicy.ALWAYS.value)),
        "status": enum(STATUSES, readOnly=True, description="Status of the latest run"),
        "next_run_at": nullable(date_time(readOnly=True)),
        "last_run_at": nullable(date_time(readOnly=True)),
        "last_status": nullable(enum(STATUSES, readOnly=True)),
        "created_at": date_time(readOnly=True),
        "updated_at": date_time(readOnly=True),
    }


TASK_INPUT_DESCRIPTION = (
    "A task definition. `run_at` is required for ONE_TIME, `cron` for CRON and `interval_seconds` for "
    "INTERVAL; the fields of another schedule type must be null or absent. Unknown fields are rejected; "
    "the read-only fields of a Task are accepted and ignored, so a Task read from the API can be sent "
    "back as is."
)


def task_input(*, required: tuple[str, ...], description: str) -> dict[str, Any]:
    properties = task_properties(for_input=True)
    properties["version"] = integer(readOnly=True, description="Accepted and ignored")
    return obj(properties, required=required, additionalProperties=False, description=description)


def schemas() -> dict[str, Any]:
    from scheduler.reconcile import REPORT_KEYS  # imported late: it needs the models and services loaded

    parameter = obj({
        "name": string(),
        "type": enum(["string", "integer", "number", "boolean", "object", "array", "any"]),
        "required": boolean(),
        "default": {"nullable": True, "description": "Default value (null when required)"},
        "nullable": boolean(),
    })
    count_by_status = {"type": "object", "additionalProperties": integer(0),
                       "description": "Count per status (statuses with none are left out)"}
    readiness_checks = {
        "status": enum(["ok", "unavailable"]),
        "reasons": array(enum(["database", "redis"]), description=REASONS_TEXT),
        "database": string(pattern=CHECK_RESULT_PATTERN, description="`ok` or `error: <kind>`"),
        "redis": string(pattern=CHECK_RESULT_PATTERN, description="`ok` or `error: <kind>`"),
    }
    return {
        "Error": obj({
            "error": enum(ERROR_CODES, description="Machine-readable error code"),
            "message": string(description="Human-readable explanation"),
            "fields": {"type": "object", "additionalProperties": string(),
                       "description": "Why each named field (or query argument) is invalid"},
        }, required=["error", "message"]),
        "Task": obj(task_properties(for_input=False)),
        "TaskInput": task_input(required=("name", "job", "schedule_type"), description=TASK_INPUT_DESCRIPTION),
        "TaskPatch": task_input(required=(), description="Fields to change; absent fields keep their value. "
                                "Switching schedule_type clears the other type's fields. " + TASK_INPUT_DESCRIPTION),
        "TaskPage": page("Task"),
        "Execution": obj({
            "id": integer(1),
            "task_id": nullable(integer(1, description="Null once the task is deleted")),
            "task_name": string(),
            "status": enum(STATUSES),
            "attempt": integer(1),
            "trigger": enum(TRIGGERS),
            "scheduled_for": date_time(),
            "started_at": nullable(date_time()),
            "finished_at": nullable(date_time()),
            "duration_ms": nullable(integer(0)),
            "message": string(),
            "result": {"nullable": True, "description": "The job's JSON result, if it returned one"},
            "worker": nullable(string()),
            "job_id": nullable(string()),
            "retry_at": nullable(date_time()),
            "created_at": date_time(description="When the entry was recorded (the since/until filters apply to it)"),
        }),
        "ExecutionPage": page("Execution"),
        "Notification": obj({
            "id": integer(1),
            "task_id": nullable(integer(1)),
            "execution_id": nullable(integer(1)),
            "level": enum(LEVELS),
            "title": string(),
            "message": string(),
            "read": boolean(),
            "created_at": date_time(),
        }),
        "NotificationPage": page("Notification"),
        "ReadAllResult": obj({"marked_read": integer(0, description="How many notifications were unread")}),
        "RunResult": obj({"job_id": string(), "task_id": integer(1), "trigger": enum([Trigger.MANUAL.value])}),
        "JobParameter": parameter,
        "Job": obj({"name": string(), "description": string(), "parameters": array(ref("JobParameter"))}),
        "CronPreview": obj({
            "next_runs": array(date_time(), maxItems=MAX_PREVIEW_COUNT,
                               description="The fire times after `from` (else now), in UTC"),
            "description": string(description="The expression in words"),
        }),
        "NextRun": obj({"task_id": integer(1), "name": string(), "next_run_at": date_time()}),
        "Stats": obj({
            "tasks": obj({"total": integer(0), "enabled": integer(0), "by_status": count_by_status}),
            "executions": obj({"total": integer(0), "by_status": count_by_status,
                               "last_24h": integer(0, description="Executions created in the last 24 hours")}),
            "next_runs": array(ref("NextRun"), maxItems=NEXT_RUNS_COUNT,
                               description="The soonest enabled runs, soonest first"),
            "queues": nullable({"type": "object", "additionalProperties": integer(0),
                                "description": "Jobs waiting per queue; null when Redis is down"}),
            "workers": obj({"count": nullable(integer(0)), "names": array(string())}),
            "scheduler": obj({"alive": boolean(), "last_heartbeat": nullable(date_time())}),
            "reconciler": obj({
                "last_run_at": nullable(date_time(description="When the last reconcile pass finished")),
                "last_report": nullable({"type": "object", "additionalProperties": True}),
            }),
            "notifications": obj({"unread": integer(0)}),
        }),
        "ReconcileReport": obj({
            "started_at": date_time(),
            "finished_at": date_time(),
            "duration_ms": integer(0),
            **{key: integer(0) for key in REPORT_KEYS},
        }, description="What one reconcile pass found and repaired"),
        "Liveness": obj({"status": enum(["ok"])}),
        "Readiness": obj(readiness_checks),
        "Health": obj({
            **readiness_checks,
            "reasons": array(enum(["database", "redis", "scheduler", "workers"]), description=REASONS_TEXT),
            "scheduler": enum(["ok", "missing", "stale", "unknown"], description=(
                "`ok`: the scheduler holding the lock beat within the last "
                f"{SCHEDULER_STALE_AFTER_SECONDS} s; `stale`: its last beat is older; `missing`: no lock holder "
                "beat (none running, or a standby not yet taken over); `unknown`: Redis is unreachable")),
            "workers": enum(["ok", "none", "unknown"], description=(
                "`ok`: at least one RQ worker is registered; `none`; `unknown`: Redis is unreachable")),
            "scheduler_heartbeat_age_seconds": nullable({"type": "number", "minimum": 0, "description": (
                "Seconds since the lock holder's last heartbeat; null when none beat or Redis is unreachable")}),
            "worker_count": nullable(integer(0, description="Registered RQ workers; null when Redis is unreachable")),
        }),
    }


def error_responses() -> dict[str, Any]:
    def response(description: str) -> dict[str, Any]:
        return ok(description, ref("Error"))

    responses = {
        "BadRequest": response("Invalid input: `fields` names each bad field or query argument"),
        "Unauthorized": response("Missing or invalid bearer token"),
        "NotFound": response("No such object (or the id in the path is not a valid id)"),
        "MethodNotAllowed": response("The path exists but not with this method; `Allow` lists the methods"),
        "Conflict": response("The request conflicts with the current state (duplicate name, dependent tasks)"),
        "PayloadTooLarge": response(f"The request body is larger than {MAX_CONTENT_LENGTH_BYTES} bytes"),
        "UnsupportedMediaType": response("The request body is not application/json"),
        "ServiceUnavailable": response("A backing service (Redis) is unavailable"),
    }
    responses["MethodNotAllowed"]["headers"] = {"Allow": {"schema": string(), "description": "Allowed methods"}}
    return responses


# --------------------------------------------------------------------------- paths


def paths() -> dict[str, Any]:
    from webapp.api.meta import MAX_PREVIEW_COUNT as max_count  # the route's own bound (meta imports this module)

    task_id = path_id("task_id", "task")
    task = ok("The task", ref("Task"))
    write_errors = (400, 404, 409, 413, 415)
    return {
        "/api/tasks/": {
            "get": operation("listTasks", "tasks", "List tasks", {200: ok("A page of tasks", ref("TaskPage"))},
                             errors=(400,), parameters=[
                                 *PAGINATION,
                                 query("status", enum(STATUSES), "Only tasks with this status (case-insensitive)"),
                                 query("enabled", boolean(), "Only enabled (true) or disabled (false) tasks"),
                                 query("schedule_type", enum(SCHEDULE_TYPES),
                                       "Only tasks of this schedule type (case-insensitive)"),
                                 query("search", string(pattern=NO_NUL),
                                       "Only tasks whose name contains this text (case-insensitive, literal; "
                                       "the first 200 characters are used)"),
                             ]),
            "post": operation("createTask", "tasks", "Create a task", {
                201: ok("The created task", ref("Task"), headers={
                    "Location": {"description": "URL of the new task", "schema": string()}}),
            }, errors=(400, 409, 413, 415), request_body=body("TaskInput", "The new task", TASK_EXAMPLES)),
        },
        "/api/tasks/{task_id}/": {
            "get": operation("getTask", "tasks", "Get a task", {200: task}, errors=(404,), parameters=[task_id]),
            "put": operation("replaceTask", "tasks", "Replace a task (omitted fields get their defaults)",
                             {200: task}, errors=write_errors, parameters=[task_id],
                             request_body=body("TaskInput", "The whole task", TASK_EXAMPLES)),
            "patch": operation("updateTask", "tasks", "Change some fields of a task", {200: task},
                               errors=write_errors, parameters=[task_id],
                               request_body=body("TaskPatch", "The fields to change", PATCH_EXAMPLES)),
            "delete": operation("deleteTask", "tasks", "Delete a task no other task depends on",
                                {204: {"description": "Deleted"}}, errors=(404, 409), parameters=[task_id]),
        },
        "/api/tasks/{task_id}/toggle/": {
            "post": operation("toggleTask", "tasks", "Enable a disabled task or disable an enabled one",
                              {200: task}, errors=(404,), parameters=[task_id]),
        },
        "/api/tasks/{task_id}/run/": {
            "post": operation("runTask", "tasks", "Queue one manual run now, enabled or not",
                              {202: ok("The run was queued", ref("RunResult"))}, errors=(404, 503),
                              parameters=[task_id]),
        },
        "/api/tasks/{task_id}/logs/": {
            "get": operation("listTaskLogs", "logs", "List the executions of one task, newest first",
                             {200: ok("A page of executions", ref("ExecutionPage"))}, errors=(400, 404),
                             parameters=[task_id, *PAGINATION, *LOG_FILTERS]),
        },
        "/api/logs/": {
            "get": operation("listLogs", "logs", "List executions, newest first",
                             {200: ok("A page of executions", ref("ExecutionPage"))}, errors=(400,),
                             parameters=[*PAGINATION, query("task_id", integer(1, MAX_ID), "Only this task's"),
                                         *LOG_FILTERS]),
        },
        "/api/logs/{execution_id}/": {
            "get": operation("getLog", "logs", "Get one execution", {200: ok("The execution", ref("Execution"))},
                             errors=(404,), parameters=[path_id("execution_id", "execution")]),
        },
        "/api/notifications/": {
            "get": operation("listNotifications", "notifications", "List notifications, newest first",
                             {200: ok("A page of notifications", ref("NotificationPage"))}, errors=(400,),
                             parameters=[*PAGINATION, query("unread", boolean(),
                                                            "Only unread (true) or read (false) notifications")]),
        },
        "/api/notifications/{notification_id}/read/": {
            "post": operation("markNotificationRead", "notifications", "Mark one notification read",
                              {200: ok("The notification", ref("Notification"))}, errors=(404,),
                              parameters=[path_id("notification_id", "notification")]),
        },
        "/api/notifications/read-all/": {
            "post": operation("markAllNotificationsRead", "notifications", "Mark every notification read",
                              {200: ok("How many were marked", ref("ReadAllResult"))}),
        },
        "/api/reconcile/": {
            "post": operation("runReconcile", "system", "Run one reconcile pass now and return its report", {
                200: ok("The pass ran", ref("ReconcileReport")),
                409: error("Conflict"),
            }, errors=(503,)),
        },
        "/api/stats/": {
            "get": operation("getStats", "system", "Counts, next runs and engine state",
                             {200: ok("The statistics (Redis parts are null when Redis is down)", ref("Stats"))}),
        },
        "/api/jobs/": {
            "get": operation("listJobs", "system", "List the registered jobs and their parameters",
                             {200: ok("The jobs, by name", array(ref("Job")))}),
        },
        "/api/cron/preview/": {
            "get": operation("previewCron", "system", "Describe a cron expression and list its next fire times",
                             {200: ok("The preview", ref("CronPreview"))}, errors=(400,), parameters=[
                                 query("cron", string(maxLength=MAX_CRON_LENGTH_CHARS), "The cron expression",
                                       required=True, example="0 9 * * 1-5"),
                                 query("timezone", string(maxLength=MAX_TIMEZONE_LENGTH_CHARS,
                                                          pattern=TIMEZONE_PATTERN, default="UTC"),
                                       "IANA time zone the expression is read in", example="Europe/Berlin"),
                                 query("count", integer(1, max_count, default=5), "How many fire times", example=3),
                                 query("from", date_time(maxLength=MAX_INSTANT_LENGTH_CHARS), (
                                     "List the fire times after this instant instead of now, e.g. just before a DST "
                                     "change. ISO 8601 with a UTC offset (`Z`, `+02:00`); a time without one is a 400"),
                                       example="2026-10-24T12:00:00+02:00"),
                             ]),
        },
        "/api/health/": {
            "get": operation("getHealth", "system", "The whole service, for an uptime monitor (no token needed)", {
                200: ok("The database and Redis answer, a scheduler dispatches and a worker is registered",
                        ref("Health")),
                503: ok("Something is down: `reasons` names it", ref("Health")),
            }, public=True),
        },
        "/api/health/ready/": {
            "get": operation("getReadiness", "system",
                             "Readiness of this web instance, for a load balancer (no token needed)", {
                                 200: ok("The database and Redis answer", ref("Readiness")),
                                 503: ok("The database or Redis is unreachable: `reasons` names it",
                                         ref("Readiness")),
                             }, public=True),
        },
        "/api/health/live/": {
            "get": operation("getLiveness", "system", "Liveness: the web process answers; nothing is checked "
                             "(no token needed)", {200: ok("The process answers", ref("Liveness"))}, public=True),
        },
        "/api/openapi.json": {
            "get": operation("getOpenApi", "system", "This OpenAPI document",
                             {200: ok("The OpenAPI 3.0 document", {"type": "object"})}),
        },
    }


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document, a fresh copy on every call (callers may change it freely)."""
    return copy.deepcopy({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Chime API",
            "version": API_VERSION,
            "description": (
                "Scheduled tasks, their execution log and notifications. Every route but the /api/health/ ones needs "
                "`Authorization: Bearer <token>`. Errors are JSON `{error, message, fields?}`; a method a "
                "path does not support answers 405 (the MethodNotAllowed response) with an `Allow` header. "
                "Paths end with a slash as shown (the slash-less form is accepted too)."
            ),
        },
        "tags": [
            {"name": "tasks", "description": "Task definitions and their runs"},
            {"name": "logs", "description": "The execution log"},
            {"name": "notifications", "description": "Notifications about runs"},
            {"name": "system", "description": "Jobs, cron preview, statistics, health"},
        ],
        "security": [{BEARER: []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {BEARER: {"type": "http", "scheme": "bearer",
                                         "description": "An API token from API_TOKENS or `flask create-token`"}},
            "schemas": schemas(),
            "responses": error_responses(),
        },
    })
