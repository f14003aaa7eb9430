"""Convert between the admin's HTML forms and the payloads the services take.

The task form turns into exactly the dict the JSON API accepts (naive datetimes as
naive ISO strings, read by the validator in the task's time zone), so the admin and the
API share one validation path: :func:`chime.services.create_task` / ``update_task``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

import jobs.registry as registry
from chime.triggers import (
    Schedule,
    ScheduleError,
    describe_cron,
    fire_times,
    first_fire_at,
    parse_aware_instant,
    validate_timezone,
)
from chime import services
from webapp.arguments import MAX_INTEGER_DIGITS, NOT_A_NUMBER, is_id_text, is_integer_text
from chime.errors import ValidationError
from chime.extensions import db
from chime.models import NotifyPolicy, Overlap, ScheduleType, Task
from webapp.admin.wording import human_seconds
from chime.timeutil import isoformat
from chime.schemas.task import DEFAULTS, FIELDS_OF_TYPE, SCHEDULE_FIELDS, TaskInput, value_type, validate_task
from chime.validation import parse_instant

# The task form's inputs, by the kind of value each holds (from the task schema: a new field appears here).
DATETIME_FIELDS = tuple(name for name in TaskInput.model_fields if value_type(name) is datetime)
INT_FIELDS = tuple(name for name in TaskInput.model_fields if value_type(name) is int)
TEXT_FIELDS = tuple(name for name in TaskInput.model_fields if issubclass(value_type(name), str))
FLAG_FIELDS = tuple(name for name in TaskInput.model_fields if value_type(name) is bool)
# The inputs tasks/form.html lays out by hand. Any other field of the task schema gets a generic input in
# the form (label: its title, hint: its description), so a new field is shown, edited and kept on save.
LAID_OUT_FIELDS = frozenset({
    "name", "description", "job", "args", "schedule_type", "timezone", "run_at", "cron", "interval_seconds",
    "start_at", "end_at", "enabled", "max_retries", "retry_backoff_seconds", "timeout_seconds", "depends_on",
    "overlap", "misfire_grace_seconds", "queue", "notify",
})
JSON_TYPES = ("object", "array", "any")
_DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")
ARG_PREFIX = "args."


# --------------------------------------------------------------------------- job argument fields


@dataclass(frozen=True)
class ArgField:
    """One job parameter as a form input."""

    job: str
    name: str
    type: str
    required: bool
    default: Any
    nullable: bool

    @property
    def input_name(self) -> str:
        return f"{ARG_PREFIX}{self.job}.{self.name}"

    @property
    def input_id(self) -> str:
        return f"arg-{self.job}-{self.name}"

    @property
    def widget(self) -> str:
        """number, checkbox, json or text."""
        if self.type in ("integer", "number"):
            return "number"
        if self.type == "boolean":
            return "checkbox"
        return "json" if self.type in JSON_TYPES else "text"

    @property
    def hint(self) -> str:
        kind = {"object": "JSON object", "array": "JSON array", "any": "any JSON value"}.get(self.type, self.type)
        if self.required:
            return f"{kind}, required"
        if self.default is None:
            return f"{kind}, optional"
        return f"{kind}, default {json.dumps(self.default)}"


@dataclass(frozen=True)
class JobChoice:
    name: str
    description: str
    fields: tuple[ArgField, ...]
    available: bool


def job_choices(allow_shell: bool) -> list[JobChoice]:
    """Every registered job with its argument fields; `available` is False for disabled jobs."""
    choices = []
    for spec in registry.all_jobs():
        fields = tuple(ArgField(spec.name, p.name, p.type, p.required, p.default, p.nullable) for p in spec.parameters)
        available = spec.name != "shell" or allow_shell
        choices.append(JobChoice(spec.name, spec.description, fields, available))
    return choices


def _arg_raw(value: Any, widget: str) -> str:
    """Render a stored argument value as the text of its input."""
    if widget == "checkbox":
        return "true" if value else "false"
    if value is None:
        return ""
    if widget == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    return str(value)


def _arg_value(raw: str, field: ArgField) -> tuple[bool, Any, str | None]:
    """Return (present, value, error) for one argument input's text."""
    if field.widget == "checkbox":
        return True, raw == "true", None
    if raw.strip() == "":
        return False, None, None
    if field.widget == "json":
        try:
            return True, json.loads(raw), None
        except ValueError as error:
            return True, None, f"is not valid JSON ({error})"
        except RecursionError:  # thousands of levels: the json module gives up
            return True, None, "is nested too deeply"
    if field.widget == "number":
        return True, _number(raw.strip(), integer=field.type == "integer"), None
    return True, raw, None


def _number(text: str, *, integer: bool) -> Any:
    """Parse a number written with ASCII digits; other text is passed on for the validator to reject.

    (int() and float() would also read '٣٠' as 30 and 'nan' or 'inf' as floats.)
    """
    if is_integer_text(text) and len(text) <= MAX_INTEGER_DIGITS:
        return int(text)
    if integer or not _DECIMAL_TEXT.fullmatch(text):
        return text
    return float(text)


# --------------------------------------------------------------------------- the task form


def blank_values() -> dict[str, Any]:
    """Form values for a new task: the API's defaults (a new task's form offers INTERVAL)."""
    values: dict[str, Any] = {name: "" if DEFAULTS.get(name) is None else str(DEFAULTS[name])
                              for name in (*TEXT_FIELDS, *INT_FIELDS, *DATETIME_FIELDS)}
    values.update({name: DEFAULTS[name] for name in FLAG_FIELDS})
    values.update(schedule_type=ScheduleType.INTERVAL.value, depends_on=[], args={})
    return values


def values_from_task(task: Task) -> dict[str, Any]:
    """Form values showing a stored task (datetimes as wall-clock times in its time zone)."""
    current = services.current_fields(task)
    values = blank_values()
    for name in (*TEXT_FIELDS, *INT_FIELDS):
        values[name] = "" if current[name] is None else str(current[name])
    for name in DATETIME_FIELDS:
        values[name] = local_input_value(current[name], task.timezone)
    values.update({name: bool(current[name]) for name in FLAG_FIELDS})
    values["depends_on"] = list(current["depends_on"])
    spec_fields = _fields_of(task.job)
    values["args"] = {task.job: {f.name: _arg_raw((current["args"] or {}).get(f.name), f.widget) for f in spec_fields}}
    return values


def values_from_form(form: MultiDict) -> dict[str, Any]:
    """Form values exactly as entered (for building the payload and for re-rendering)."""
    values = blank_values()
    for name in (*TEXT_FIELDS, *INT_FIELDS, *DATETIME_FIELDS):
        values[name] = form.get(name, "")
    values.update({name: form.get(name) in ("on", "true", "1") for name in FLAG_FIELDS})
    values["depends_on"] = form.getlist("depends_on")
    args: dict[str, dict[str, str]] = {}
    for choice in job_choices(allow_shell=True):
        args[choice.name] = {}
        for field in choice.fields:
            if field.widget == "checkbox":
                args[choice.name][field.name] = "true" if form.get(field.input_name) in ("on", "true") else "false"
            else:
                args[choice.name][field.name] = form.get(field.input_name, "")
    values["args"] = args
    return values


def payload_from_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Return (the API payload, conversion errors) for form values.

    Empty inputs are left out, so the API's defaults apply; schedule fields that do not
    belong to the chosen schedule type are left out too (all are visible without JS).
    """
    payload: dict[str, Any] = {}
    errors: dict[str, str] = {}
    allowed = FIELDS_OF_TYPE.get(values["schedule_type"], ())
    for name in TEXT_FIELDS:
        if values[name] != "" and (name not in SCHEDULE_FIELDS or name in allowed):
            payload[name] = values[name]
    for name in INT_FIELDS:
        raw = str(values[name]).strip()
        if raw and (name not in SCHEDULE_FIELDS or name in allowed):
            payload[name] = _number(raw, integer=True)
            if not is_integer_text(raw):
                errors[name] = NOT_A_NUMBER
    for name in DATETIME_FIELDS:
        raw = str(values[name]).strip()
        if raw and (name not in SCHEDULE_FIELDS or name in allowed):
            payload[name] = raw
    payload.update({name: bool(values[name]) for name in FLAG_FIELDS})
    payload["depends_on"] = [int(v) if is_id_text(str(v)) else v for v in values["depends_on"]]
    payload["args"], arg_errors = _args_payload(values)
    return payload, {**errors, **arg_errors}


def _args_payload(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    args: dict[str, Any] = {}
    errors: dict[str, str] = {}
    raw_args = values["args"].get(values["job"], {})
    for field in _fields_of(values["job"]):
        present, value, error = _arg_value(raw_args.get(field.name, ""), field)
        if error:
            errors[ARG_PREFIX + field.name] = error
        elif present:
            args[field.name] = value
    return args, errors


def _fields_of(job: str) -> tuple[ArgField, ...]:
    try:
        spec = registry.get(job)
    except registry.UnknownJobError:
        return ()
    return tuple(ArgField(spec.name, p.name, p.type, p.required, p.default, p.nullable) for p in spec.parameters)


def save_task(values: dict[str, Any], task: Task | None, *, allow_shell: bool) -> Task:
    """Create (task=None) or replace a task from form values; raises ValidationError/ConflictError."""
    payload, errors = payload_from_values(values)
    if errors:
        try:
            validate_task(payload, allow_shell=allow_shell)
        except ValidationError as error:
            errors = {**(error.fields or {}), **errors}
        raise ValidationError(errors)
    if task is None:
        return services.create_task(payload, allow_shell=allow_shell)
    return services.update_task(task, payload, partial=False, allow_shell=allow_shell)


def local_input_value(value: datetime | None, zone_name: str) -> str:
    """An aware instant as a datetime-local input value in the given zone."""
    if value is None:
        return ""
    try:
        zone = ZoneInfo(zone_name)
    except Exception:  # noqa: BLE001 - an unknown zone shows UTC
        zone = ZoneInfo("UTC")
    local = value.astimezone(zone).replace(tzinfo=None)
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class GenericInput:
    """A task field the form's template does not lay out, shown as a plain input."""

    name: str
    label: str
    hint: str | None
    widget: str  # number, datetime-local, checkbox, select or text
    options: tuple[tuple[str, str], ...] = ()


def generic_inputs() -> list[GenericInput]:
    """An input for each task field the template does not lay out itself (none today)."""
    inputs = []
    for name, field in TaskInput.model_fields.items():
        if name in LAID_OUT_FIELDS or name not in (*TEXT_FIELDS, *INT_FIELDS, *DATETIME_FIELDS, *FLAG_FIELDS):
            continue
        kind = value_type(name)
        widget = ("number" if name in INT_FIELDS else "datetime-local" if name in DATETIME_FIELDS
                  else "checkbox" if name in FLAG_FIELDS else "select" if issubclass(kind, Enum) else "text")
        options = tuple((member.value, member.value) for member in kind) if widget == "select" else ()
        inputs.append(GenericInput(name, field.title or name, field.description, widget, options))
    return inputs


OVERLAPS = tuple(o.value for o in Overlap)
NOTIFY_POLICIES = tuple(n.value for n in NotifyPolicy)


# --------------------------------------------------------------------------- live schedule preview


def schedule_preview(args: MultiDict, now: datetime, count: int) -> dict[str, Any]:
    """{"next_runs": [ISO, ...], "description", "error"} for the schedule fields of the form.

    The runs are those after `from` (an instant with a UTC offset) when it is given, else after now.
    """
    schedule_type = args.get("schedule_type", "")
    zone_name = args.get("timezone", "").strip() or "UTC"
    try:
        zone = validate_timezone(zone_name)
        schedule = Schedule(
            schedule_type=schedule_type, timezone=zone_name,
            run_at=_preview_instant(args, "run_at", zone) if schedule_type == ScheduleType.ONE_TIME.value else None,
            cron=args.get("cron") if schedule_type == ScheduleType.CRON.value else None,
            interval_seconds=_preview_interval(args) if schedule_type == ScheduleType.INTERVAL.value else None,
            start_at=_preview_instant(args, "start_at", zone), end_at=_preview_instant(args, "end_at", zone),
            anchor_at=_anchor(args.get("task", ""), now),
        )
        times = first_and_next(schedule, _preview_from(args, now), count)
    except (ScheduleError, ValueError) as error:
        return {"next_runs": [], "description": "", "error": str(error)}
    return {"next_runs": [isoformat(t) for t in times], "description": _describe(schedule), "error": None}


def first_and_next(schedule: Schedule, now: datetime, count: int) -> list[datetime]:
    if schedule.schedule_type == ScheduleType.ONE_TIME.value:
        first = first_fire_at(schedule, now)
        return [first] if first else []
    return fire_times(schedule, now, count)


def _describe(schedule: Schedule) -> str:
    if schedule.schedule_type == ScheduleType.CRON.value:
        return describe_cron(schedule.cron or "")
    if schedule.schedule_type == ScheduleType.INTERVAL.value:
        return f"Every {human_seconds(schedule.interval_seconds)}"
    return "Once (a time in the past runs as soon as the task is saved)"


def _preview_instant(args: MultiDict, name: str, zone: ZoneInfo) -> datetime | None:
    raw = args.get(name, "").strip()
    if not raw:
        return None
    try:
        return parse_instant(raw, zone)
    except ValueError as error:
        raise ValueError(f"{name.replace('_', ' ')} {error}") from None


def _preview_from(args: MultiDict, now: datetime) -> datetime:
    """The instant the preview starts from: the `from` argument, else now."""
    raw = args.get("from", "").strip()
    if not raw:
        return now
    try:
        return parse_aware_instant(raw)
    except ScheduleError as error:
        raise ScheduleError(f"Preview from: {error}") from None


def _preview_interval(args: MultiDict) -> int:
    raw = args.get("interval_seconds", "").strip()
    if not is_integer_text(raw) or len(raw) > MAX_INTEGER_DIGITS or int(raw) < 1:
        raise ValueError("The interval must be a whole number of seconds (digits 0-9), at least 1.")
    return int(raw)


def _anchor(task_id: str, now: datetime) -> datetime:
    """Interval fires count from start_at, else from the task's creation (now, for a new task)."""
    task = db.session.get(Task, int(task_id)) if is_id_text(task_id) else None
    return task.created_at if task is not None and task.created_at else now


# --------------------------------------------------------------------------- error summary

FIELD_LABELS = {name: field.title or name for name, field in TaskInput.model_fields.items()}


def error_summary(errors: dict[str, str], job: str) -> list[tuple[str, str, str]]:
    """(label, reason, id of the input) for each error, in the form's order."""
    order = list(FIELD_LABELS)
    items = []
    for key, reason in errors.items():
        if key.startswith(ARG_PREFIX):
            name = key[len(ARG_PREFIX):]
            items.append((len(order), f"Argument {name}", reason, f"arg-{job}-{name}"))
        elif key == "schedule_type":
            items.append((order.index(key), FIELD_LABELS[key], reason, "f-schedule_type-ONE_TIME"))
        elif key == "args":
            items.append((order.index(key), FIELD_LABELS[key], reason, f"args-{job}"))
        else:
            position = order.index(key) if key in order else len(order) + 1
            items.append((position, FIELD_LABELS.get(key, key), reason, f"f-{key}"))
    return [(label, reason, anchor) for _, label, reason, anchor in sorted(items, key=lambda item: item[0])]


def run_args_field(text: str | None) -> Any:
    """The "Run with arguments…" form's JSON text: None when the form did not send it (a plain run now),
    else the parsed value (checked against the task's job by chime.services.run_args)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ValidationError({"args": "is not valid JSON"},
                              "Invalid input: args: is not valid JSON (write an object such as {\"name\": \"value\"})") from None
