"""The one place that turns a payload into valid task fields or a {field: reason} error.

Both the JSON API and the admin forms call :func:`validate_task`; the database checks
(dependencies exist, no cycle, unique name) live in :mod:`chime.services`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import jobs.registry as registry
from chime.triggers import ScheduleError, validate_cron, validate_timezone
from chime.errors import ValidationError
from chime.models import QUEUE_NAMES, NotifyPolicy, Overlap, ScheduleType

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
MAX_INTERVAL_SECONDS = 10 * 365 * 24 * 3600
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_BACKOFF_SECONDS = 24 * 3600
MAX_RETRIES = 100
MAX_GRACE_SECONDS = 365 * 24 * 3600
MAX_DEPENDENCIES = 100
MAX_ID = 2**31 - 1  # the largest id the INTEGER primary keys can hold (SQLite and Postgres alike)
MAX_ARGS_DEPTH = 32  # arrays and objects inside one argument (a page showing 900 levels was 32 MB)
MAX_ARGS_BYTES = 64 * 1024  # the args object as compact UTF-8 JSON

DEFAULTS: dict[str, Any] = {
    "description": "",
    "args": {},
    "run_at": None,
    "cron": None,
    "interval_seconds": None,
    "timezone": "UTC",
    "start_at": None,
    "end_at": None,
    "enabled": True,
    "max_retries": 3,
    "retry_backoff_seconds": 60,
    "timeout_seconds": 300,
    "depends_on": [],
    "overlap": Overlap.SKIP.value,
    "misfire_grace_seconds": 300,
    "queue": "default",
    "notify": NotifyPolicy.ALWAYS.value,
}
REQUIRED = ("name", "job", "schedule_type")
READ_ONLY = frozenset(
    {"id", "status", "next_run_at", "last_run_at", "last_status", "created_at", "updated_at", "version"}
)
FIELDS_OF_TYPE = {
    ScheduleType.ONE_TIME.value: ("run_at",),
    ScheduleType.CRON.value: ("cron", "start_at", "end_at"),
    ScheduleType.INTERVAL.value: ("interval_seconds", "start_at", "end_at"),
}
SCHEDULE_FIELDS = ("run_at", "cron", "interval_seconds", "start_at", "end_at")
WRITABLE = frozenset(REQUIRED) | frozenset(DEFAULTS)


def parse_instant(value: Any, zone: ZoneInfo | None = None) -> datetime:
    """Parse ISO-8601 text into an aware UTC instant; a naive value is read in `zone`."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time such as 2030-01-31T09:00:00+00:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone or timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError("is out of range") from None


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return check


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError("must be one of " + ", ".join(options))
        return value

    return check


def _text(max_length: int, *, required: bool) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            raise ValueError("must be a string")
        value = value.strip() if required else value
        if required and not value:
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        reason = text_error(value)
        if reason:
            raise ValueError(reason)
        return value

    return check


def text_error(value: str) -> str | None:
    """Say why text cannot be stored and shown (NUL, lone surrogates), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if not is_encodable(value):
        return "must be valid Unicode text (no lone surrogates)"
    return None


def json_value_error(value: Any, max_depth: int = MAX_ARGS_DEPTH) -> str | None:
    """Say why a JSON value cannot be stored and shown: nested too deep, or text that `text_error` refuses.

    Walks the value with an explicit stack, so no depth reaches Python's recursion limit. A scalar is at
    depth 0; each array or object around it adds one.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            reason = text_error(item)
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                return f"must not be nested more than {max_depth} levels deep"
            children = list(item.items()) if isinstance(item, dict) else [(None, child) for child in item]
            keys = [key for key, _ in children if isinstance(key, str)]
            reason = next((f"has a key that {r}" for r in map(text_error, keys) if r), None)
            stack.extend((child, depth + 1) for _, child in children)
        else:
            reason = None
        if reason:
            return reason
    return None


def args_errors(args: Any) -> dict[str, str]:
    """Check what no job's own validation should have to: depth, size and text of every argument."""
    if not isinstance(args, dict):
        return {}  # the registry says "must be an object"
    errors: dict[str, str] = {}
    for key, value in args.items():
        key_reason = text_error(key) if isinstance(key, str) else None
        if key_reason:
            errors["args"] = f"argument names {key_reason}"
            continue
        reason = json_value_error(value, MAX_ARGS_DEPTH)
        if reason:
            errors[f"args.{key}"] = reason
    if not errors and len(json.dumps(args, ensure_ascii=False, separators=(",", ":")).encode()) > MAX_ARGS_BYTES:
        errors["args"] = f"must be at most {MAX_ARGS_BYTES // 1024} KiB as JSON"
    return errors


def is_encodable(value: str) -> bool:
    """Say whether text can be stored: lone surrogates (from JSON escapes like \\ud800) cannot be UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _cron(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a cron expression string")
    try:
        validate_cron(value.strip())
    except ScheduleError as error:
        raise ValueError(str(error)) from None
    return " ".join(value.split())


def _zone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be an IANA time zone name such as Europe/Berlin")
    try:
        validate_timezone(value)
    except ScheduleError as error:
        raise ValueError(str(error)) from None
    return value


def _depends_on(value: Any) -> list[int]:
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise ValueError("must be a list of task ids")
    if len(value) > MAX_DEPENDENCIES:
        raise ValueError(f"must list at most {MAX_DEPENDENCIES} tasks")
    if any(not 1 <= v <= MAX_ID for v in value):
        raise ValueError(f"must list task ids between 1 and {MAX_ID}")
    return sorted(set(value))


SIMPLE_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _text(MAX_NAME_LENGTH, required=True),
    "description": _text(MAX_DESCRIPTION_LENGTH, required=False),
    "schedule_type": _choice(tuple(t.value for t in ScheduleType)),
    "cron": _cron,
    "interval_seconds": _integer(1, MAX_INTERVAL_SECONDS),
    "timezone": _zone,
    "enabled": _boolean,
    "max_retries": _integer(0, MAX_RETRIES),
    "retry_backoff_seconds": _integer(1, MAX_BACKOFF_SECONDS),
    "timeout_seconds": _integer(1, MAX_TIMEOUT_SECONDS),
    "depends_on": _depends_on,
    "overlap": _choice(tuple(o.value for o in Overlap)),
    "misfire_grace_seconds": _integer(0, MAX_GRACE_SECONDS),
    "queue": _choice(QUEUE_NAMES),
    "notify": _choice(tuple(n.value for n in NotifyPolicy)),
}


def validate_task(
    payload: Any, *, current: Mapping[str, Any] | None = None, allow_shell: bool = False
) -> dict[str, Any]:
    """Return clean task fields for a create (current=None), a PUT or a PATCH.

    For a PATCH pass the task's current fields as `current`; keys absent from the
    payload keep their value. Raises ValidationError naming every bad field.
    """
    if not isinstance(payload, Mapping):
        raise ValidationError({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    for key in payload:
        if not isinstance(key, str) or (key not in WRITABLE and key not in READ_ONLY):
            errors[str(key)[:100]] = "unknown field"
    given = {k: v for k, v in payload.items() if k in WRITABLE}
    merged = _merge(given, current)
    clean = _check_simple(merged, errors)
    _check_schedule(merged, given, clean, errors)
    _check_job(merged, clean, errors, allow_shell)
    if errors:
        raise ValidationError(errors)
    return clean


def _merge(given: dict[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    if current is None:
        return {**DEFAULTS, **given}
    merged = {**current, **given}
    new_type = given.get("schedule_type")
    if new_type is not None and new_type != current.get("schedule_type"):
        for field in SCHEDULE_FIELDS:
            if field not in given:
                merged[field] = None
    return merged


def _check_simple(merged: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for field in REQUIRED:
        if merged.get(field) is None:
            errors.setdefault(field, "required")
    for field, check in SIMPLE_CHECKS.items():
        value = merged.get(field)
        if value is None and field not in REQUIRED:
            clean[field] = DEFAULTS.get(field)
            continue
        if value is None:
            continue
        try:
            clean[field] = check(value)
        except ValueError as error:
            errors.setdefault(field, str(error))
    return clean


def _check_schedule(
    merged: dict[str, Any], given: dict[str, Any], clean: dict[str, Any], errors: dict[str, str]
) -> None:
    schedule_type = clean.get("schedule_type")
    if schedule_type is None:
        return
    allowed = FIELDS_OF_TYPE[schedule_type]
    for field in SCHEDULE_FIELDS:
        if field not in allowed:
            if given.get(field) is not None:
                errors.setdefault(field, f"not allowed for schedule_type {schedule_type}")
            clean[field] = None
    for field in allowed:
        if field in ("start_at", "end_at"):
            clean.setdefault(field, None)  # a PUT without them clears them
            continue
        if field in errors:
            continue
        if merged.get(field) is None:
            errors.setdefault(field, f"required for schedule_type {schedule_type}")
    zone = ZoneInfo(clean["timezone"]) if "timezone" in clean and clean["timezone"] else None
    for field in ("run_at", "start_at", "end_at"):
        if field in allowed and merged.get(field) is not None:
            value = merged[field]
            try:
                clean[field] = value if isinstance(value, datetime) else parse_instant(value, zone)
            except ValueError as error:
                errors.setdefault(field, str(error))
    start_at, end_at = clean.get("start_at"), clean.get("end_at")
    if start_at and end_at and end_at <= start_at and "end_at" not in errors:
        errors["end_at"] = "must be later than start_at"


def _check_job(merged: dict[str, Any], clean: dict[str, Any], errors: dict[str, str], allow_shell: bool) -> None:
    name = merged.get("job")
    if name is None:
        return
    if not isinstance(name, str):
        errors["job"] = "must be the name of a registered job"
        return
    try:
        spec = registry.get(name)
    except registry.UnknownJobError as error:
        errors["job"] = str(error)
        return
    if spec.name == "shell" and not allow_shell:
        errors["job"] = "shell jobs are disabled; set ALLOW_SHELL_JOBS=true to enable them"
        return
    clean["job"] = spec.name
    args = merged.get("args") if merged.get("args") is not None else {}
    problems = args_errors(args)
    if problems:
        errors.update(problems)
        return
    try:
        clean["args"] = registry.validate_args(spec.name, args)
    except registry.ArgsError as error:
        for arg, reason in error.fields.items():
            errors[arg if arg in ("args", "job") else f"args.{arg}"] = reason
    except registry.JobError as error:
        errors["job"] = str(error)
