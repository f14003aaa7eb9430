"""The Task resource, declared once: what a client may write and what it reads back.

Validation (API, admin forms, import), serialization (``task_to_dict``), the admin form's
fields and the OpenAPI document are all derived from the models below:

* :class:`TaskInput` -- a whole task definition (POST, PUT, an import entry, the admin form).
  Each field's description, default and bounds are written here once; ``null`` means "its default".
* :class:`TaskPatch` -- a PATCH body: the same fields, none required. A PATCH is merged onto the
  task's current fields (:func:`merge_patch`) and the result is validated as a TaskInput.
* :class:`TaskRead` -- the task as the API shows it: the input fields plus the server's own.

Rules between fields are field validators reading the fields declared before them (``info.data``):
so ``schedule_type`` and ``timezone`` come before the schedule fields, ``job`` before ``args``,
``start_at`` before ``end_at``. A field that failed its own checks is absent from ``info.data``.
"""
from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo

import annotated_types
import pydantic
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic import create_model, model_validator
from pydantic_core import PydanticCustomError

import jobs.registry as registry
from chime import audit
from chime.schemas import common
from chime.schemas.common import storable, stripped
from chime.errors import ValidationError
from chime.models import QUEUE_NAMES, NotifyPolicy, Overlap, ScheduleType, Status
from chime.triggers import MAX_CRON_LENGTH_CHARS, MAX_TIMEZONE_LENGTH_CHARS, ScheduleError, validate_cron
from chime.triggers import validate_timezone
from chime.validation import MAX_ID, SURROGATE_REASON, args_errors, instant_in_zone, read_iso_datetime

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
MAX_INTERVAL_SECONDS = 10 * 365 * 24 * 3600
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_BACKOFF_SECONDS = 24 * 3600
MAX_RETRIES = 100
MAX_GRACE_SECONDS = 365 * 24 * 3600
MAX_DEPENDENCIES = 100

NO_NUL = "^[^\\u0000]*$"
NOT_BLANK_NO_NUL = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
TIMEZONE_PATTERN = "^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"
READ_ONLY = {"readOnly": True}


# --------------------------------------------------------------------------- reasons


@dataclass(frozen=True)
class Reasons:
    """A field's own wording for pydantic's errors (Annotated metadata; pydantic ignores it).

    `wrong_type` replaces "must be a string/an integer/..."; `out_of_range` and `too_long` are
    formatted with the bounds (`ge`, `le`, `max_length`).
    """

    wrong_type: str | None = None
    out_of_range: str | None = None
    too_long: str | None = None


TYPE_REASONS = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "string_unicode": SURROGATE_REASON,
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must not be empty",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "too_long": "must have at most {max_length} items",
    "greater_than_equal": "must be between {ge} and {le}",
    "less_than_equal": "must be between {ge} and {le}",
}
WRONG_TYPE = frozenset({"string_type", "int_type", "int_from_float", "bool_type", "dict_type", "list_type"})
OUT_OF_RANGE = frozenset({"greater_than_equal", "less_than_equal"})
BOUND_TYPES = {"ge": annotated_types.Ge, "le": annotated_types.Le, "max_length": annotated_types.MaxLen}


# --------------------------------------------------------------------------- field types


def _cron(value: str) -> str:
    try:
        validate_cron(value.strip())
    except ScheduleError as error:
        raise ValueError(str(error)) from None
    return " ".join(value.split())


def _zone(value: str) -> str:
    try:
        validate_timezone(value)
    except ScheduleError as error:
        raise ValueError(str(error)) from None
    return value


def _instant_input(value: Any) -> Any:
    """ISO-8601 text to a datetime, naive if it has no offset (the task's zone is applied later)."""
    return value if value is None or isinstance(value, datetime) else read_iso_datetime(value)


def _unique_sorted(ids: list[int]) -> list[int]:
    return sorted(set(ids))


#: An instant: read as ISO-8601 (without an offset: in the task's time zone), shown with +00:00.
Instant = Annotated[common.Instant, BeforeValidator(_instant_input)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_NAME_LENGTH,
                             json_schema_extra={"pattern": NOT_BLANK_NO_NUL}),
                 BeforeValidator(stripped), AfterValidator(storable)]
Description = Annotated[str, Field(strict=True, max_length=MAX_DESCRIPTION_LENGTH, json_schema_extra={"pattern": NO_NUL}),
                        AfterValidator(storable)]
Cron = Annotated[str, Field(strict=True, json_schema_extra={"maxLength": MAX_CRON_LENGTH_CHARS}),
                 Reasons(wrong_type="must be a cron expression string"), AfterValidator(_cron)]
Zone = Annotated[str, Field(strict=True, json_schema_extra={"maxLength": MAX_TIMEZONE_LENGTH_CHARS,
                                                            "pattern": TIMEZONE_PATTERN}),
                 Reasons(wrong_type="must be an IANA time zone name such as Europe/Berlin"), AfterValidator(_zone)]
JobName = Annotated[str, Field(strict=True), Reasons(wrong_type="must be the name of a registered job")]
Flag = Annotated[bool, Field(strict=True)]
TaskId = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]
TaskIds = Annotated[list[TaskId], Field(strict=True, max_length=MAX_DEPENDENCIES),
                    Reasons(wrong_type="must be a list of task ids", out_of_range="must list task ids between {ge} and {le}",
                            too_long="must list at most {max_length} tasks"), AfterValidator(_unique_sorted)]
Queue = Literal[QUEUE_NAMES]  # type: ignore[valid-type]


def _bounded(low: int, high: int) -> Any:
    return Annotated[int, Field(strict=True, ge=low, le=high)]


# --------------------------------------------------------------------------- the models


class TaskInput(BaseModel):
    """A task definition (POST, PUT, an import entry, the admin form). Unknown fields are rejected;
    the read-only fields of a Task are accepted and ignored, so a Task read back can be sent as is."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(title="Name", description="Unique name; surrounding whitespace is trimmed")
    description: Description | None = Field("", title="Description")
    job: JobName = Field(title="Job", description="Name of a registered job (GET /api/jobs/ lists them)")
    args: dict[str, Any] | None = Field(
        default_factory=dict, title="Arguments", validate_default=True,
        description="Arguments for the job, checked against its parameters")
    schedule_type: ScheduleType = Field(title="Schedule type")
    timezone: Zone | None = Field("UTC", title="Time zone", description="IANA time zone name such as Europe/Berlin")
    run_at: Instant | None = Field(
        None, title="Run at", validate_default=True,
        description="ONE_TIME only: when to run (without an offset: in `timezone`)")
    cron: Cron | None = Field(None, title="Cron expression", validate_default=True,
                              description="CRON only: 5-field expression or an alias such as @daily")
    interval_seconds: _bounded(1, MAX_INTERVAL_SECONDS) | None = Field(
        None, title="Interval", validate_default=True, description="INTERVAL only")
    start_at: Instant | None = Field(None, title="Start", validate_default=True,
                                     description="CRON and INTERVAL: first instant the task may fire")
    end_at: Instant | None = Field(None, title="End", validate_default=True,
                                   description="CRON and INTERVAL: last instant; later than start_at")
    enabled: Flag | None = Field(True, title="Enabled")
    max_retries: _bounded(0, MAX_RETRIES) | None = Field(3, title="Max retries")
    retry_backoff_seconds: _bounded(1, MAX_BACKOFF_SECONDS) | None = Field(60, title="Retry backoff")
    timeout_seconds: _bounded(1, MAX_TIMEOUT_SECONDS) | None = Field(300, title="Timeout")
    depends_on: TaskIds | None = Field(default_factory=list, title="Depends on",
                                       description="Ids of the tasks this one depends on")
    overlap: Overlap | None = Field(Overlap.SKIP, title="Overlap")
    misfire_grace_seconds: _bounded(0, MAX_GRACE_SECONDS) | None = Field(300, title="Misfire grace")
    queue: Queue | None = Field("default", title="Queue")
    notify: NotifyPolicy | None = Field(NotifyPolicy.ALWAYS, title="Notify")

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        """Ignore the read-only fields; a null optional field takes its default, a null required one is missing."""
        if not isinstance(data, Mapping):
            return data
        given = {key: value for key, value in data.items() if key not in READ_ONLY_FIELDS}
        for name, field in cls.model_fields.items():
            if name in given and given[name] is None:
                if field.is_required():
                    del given[name]
                else:
                    given[name] = field.get_default(call_default_factory=True)
        return given

    @field_validator("job")
    @classmethod
    def _registered_job(cls, name: str, info: ValidationInfo) -> str:
        try:
            spec = registry.get(name)
        except registry.UnknownJobError as error:
            raise ValueError(str(error)) from None
        allow_shell = bool((info.context or {}).get("allow_shell"))
        if not spec.enabled or (spec.name == "shell" and not allow_shell):
            raise ValueError(f"{spec.name} jobs are disabled; set {spec.enabled_env}=true to enable them")
        return spec.name

    @field_validator("args")
    @classmethod
    def _args_of_the_job(cls, args: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Check the arguments against the job's parameters (only once the job itself is valid)."""
        if "job" not in info.data:
            return args
        problems = args_errors(args)
        if not problems:
            try:
                return registry.validate_args(info.data["job"], args)
            except registry.ArgsError as error:
                problems = {key if key == "args" else f"args.{key}": reason for key, reason in error.fields.items()}
        raise _nested_errors("args", problems, args)

    @field_validator("run_at", "cron", "interval_seconds", "start_at", "end_at")
    @classmethod
    def _fits_the_schedule_type(cls, value: Any, info: ValidationInfo) -> Any:
        """A schedule field is required, allowed or refused by schedule_type; instants are read in the task's zone."""
        schedule_type = info.data.get("schedule_type")
        if schedule_type is None:
            return _in_zone(value, info)
        if info.field_name not in FIELDS_OF_TYPE[schedule_type]:
            if value is not None:
                raise ValueError(f"not allowed for schedule_type {schedule_type.value}")
            return None
        if value is None and info.field_name in REQUIRED_OF_TYPE[schedule_type]:
            raise ValueError(f"required for schedule_type {schedule_type.value}")
        value = _in_zone(value, info)
        start_at = info.data.get("start_at")
        if info.field_name == "end_at" and value is not None and start_at is not None and value <= start_at:
            raise ValueError("must be later than start_at")
        return value


def _in_zone(value: Any, info: ValidationInfo) -> Any:
    """An instant as aware UTC; a naive one is read in the task's time zone (UTC when that is invalid)."""
    if not isinstance(value, datetime):
        return value
    zone_name = info.data.get("timezone")
    return instant_in_zone(value, ZoneInfo(zone_name) if zone_name else timezone.utc)


def _nested_errors(field: str, problems: Mapping[str, str], value: Any) -> pydantic.ValidationError:
    """One error per `problems` key: `field` itself or `field.<name>` (a job argument)."""
    errors = [{"type": PydanticCustomError("task_rule", reason),
               "loc": () if key == field else (key.removeprefix(field + "."),), "input": value}
              for key, reason in problems.items()]
    return pydantic.ValidationError.from_exception_data(field, errors)


FIELDS_OF_TYPE: dict[ScheduleType, tuple[str, ...]] = {
    ScheduleType.ONE_TIME: ("run_at",),
    ScheduleType.CRON: ("cron", "start_at", "end_at"),
    ScheduleType.INTERVAL: ("interval_seconds", "start_at", "end_at"),
}
REQUIRED_OF_TYPE = {kind: fields[:1] for kind, fields in FIELDS_OF_TYPE.items()}
SCHEDULE_FIELDS = ("run_at", "cron", "interval_seconds", "start_at", "end_at")


class TaskPatch(TaskInput):
    """A PATCH body: any of a TaskInput's fields; absent fields keep their value, null ones take their
    default, and switching schedule_type clears the other type's fields. It is merged onto the task's
    current fields (:func:`merge_patch`) and the result validated as a TaskInput: this class only
    describes the body (nothing is required)."""

    model_config = ConfigDict(json_schema_extra=lambda schema: schema.pop("required", None))


class TaskServerFields(BaseModel):
    """What the server keeps about a task besides its definition; read-only."""

    id: Annotated[int, Field(ge=1, json_schema_extra=READ_ONLY)]
    status: Annotated[Status, Field(description="Status of the latest run", json_schema_extra=READ_ONLY)]
    next_run_at: Annotated[Instant | None, Field(json_schema_extra=READ_ONLY)]
    last_run_at: Annotated[Instant | None, Field(json_schema_extra=READ_ONLY)]
    last_status: Annotated[Status | None, Field(json_schema_extra=READ_ONLY)]
    created_at: Annotated[Instant, Field(json_schema_extra=READ_ONLY)]
    updated_at: Annotated[Instant, Field(json_schema_extra=READ_ONLY)]
    paused_reason: Annotated[str | None, Field(
        description="Why the task is paused (a paused task is disabled); null when it is not",
        json_schema_extra=READ_ONLY)]
    paused_by: Annotated[str | None, Field(description="Who paused it", json_schema_extra=READ_ONLY)]
    paused_at: Annotated[Instant | None, Field(json_schema_extra=READ_ONLY)]
    resume_at: Annotated[Instant | None, Field(description="When the paused task resumes by itself, if set",
                                               json_schema_extra=READ_ONLY)]


def _without_none(annotation: Any) -> Any:
    """`X` for `X | None`; any other type as it is."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return annotation
    arms = [arm for arm in get_args(annotation) if arm is not type(None)]
    return arms[0] if len(arms) == 1 else annotation


def _read_field(field: pydantic.fields.FieldInfo) -> tuple[Any, Any]:
    """An input field as it is read back: always present, null only where null is a value (not "default")."""
    annotation = field.annotation
    if field.get_default(call_default_factory=True) is not None:
        annotation = _without_none(annotation)
    if field.metadata:
        annotation = Annotated[annotation, *field.metadata]
    return annotation, Field(title=field.title, description=field.description)


#: The task as the API shows it (GET, and the answer to every change): the same keys and values as before.
TaskRead = create_model(
    "TaskRead", __base__=BaseModel, __doc__="A task as the API shows it.",
    id=(TaskServerFields.model_fields["id"].annotation, TaskServerFields.model_fields["id"]),
    **{name: _read_field(field) for name, field in TaskInput.model_fields.items()},
    **{name: (field.annotation, field) for name, field in TaskServerFields.model_fields.items() if name != "id"},
)

WRITABLE = frozenset(TaskInput.model_fields)
#: Keys a client may send and that are ignored: what the API shows besides the definition, and ``version``
#: (the server's own revision of the definition, never shown, accepted as it always was).
READ_ONLY_FIELDS = frozenset(TaskServerFields.model_fields) | {"version"}
DEFAULTS = {name: field.get_default(call_default_factory=True)
            for name, field in TaskInput.model_fields.items() if not field.is_required()}
REQUIRED = tuple(name for name, field in TaskInput.model_fields.items() if field.is_required())


# --------------------------------------------------------------------------- use


def validate_task(payload: Any, *, current: Mapping[str, Any] | None = None, allow_shell: bool = False
                  ) -> dict[str, Any]:
    """Return clean task fields for a create (current=None), a PUT or a PATCH (current=the task's fields).

    Raises ValidationError naming every bad field: {field: reason}.
    """
    if not isinstance(payload, Mapping):
        raise ValidationError({"body": "must be a JSON object"})
    unknown = {str(key)[:100]: "unknown field" for key in payload if key not in WRITABLE | READ_ONLY_FIELDS}
    given = {key: value for key, value in payload.items() if key in WRITABLE}
    try:
        task = TaskInput.model_validate(merge_patch(current, given) if current is not None else given,
                                        context={"allow_shell": allow_shell})
    except pydantic.ValidationError as error:
        raise ValidationError({**unknown, **field_errors(error)}) from None
    if unknown:
        raise ValidationError(unknown)
    return task.model_dump()


def merge_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a PATCH leaves: the current ones, overwritten by the patch's; a new schedule_type
    clears the schedule fields the patch does not give."""
    merged = {**current, **patch}
    new_type = patch.get("schedule_type")
    if new_type is not None and new_type != current.get("schedule_type"):
        for name in SCHEDULE_FIELDS:
            if name not in patch:
                merged[name] = None
    return merged


def task_to_dict(task: Any) -> dict[str, Any]:
    """Represent a stored task as the API shows it (JSON-ready)."""
    values = {name: getattr(task, name) for name in TaskRead.model_fields if name != "depends_on"}
    values["depends_on"] = [parent.id for parent in task.parents]
    values["description"] = values["description"] or ""
    values["args"] = audit.shown_args(values["args"] or {})
    return TaskRead.model_construct(**values).model_dump(mode="json")


def value_type(name: str) -> type:
    """The Python type a TaskInput field holds once valid (int, str, datetime, an enum, dict...)."""
    kind = _without_none(TaskInput.model_fields[name].annotation)
    while get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    if get_origin(kind) is Literal:
        return type(get_args(kind)[0])
    return get_origin(kind) or kind


# --------------------------------------------------------------------------- errors


def field_errors(error: pydantic.ValidationError) -> dict[str, str]:
    """pydantic's errors as {field: reason}, the first reason of each field (job arguments as "args.<name>")."""
    fields: dict[str, str] = {}
    for item in error.errors(include_url=False):
        loc = item["loc"]
        key = f"args.{loc[1]}" if loc[:1] == ("args",) and len(loc) > 1 and item["type"] == "task_rule" else str(loc[0])
        fields.setdefault(key[:100], _reason(item, TaskInput.model_fields.get(str(loc[0]))))
    return fields


def _reason(item: Mapping[str, Any], field: pydantic.fields.FieldInfo | None) -> str:
    kind, context = item["type"], item.get("ctx") or {}
    if kind == "value_error":
        return str(context["error"])
    if kind in ("enum", "literal_error") and field is not None:
        return "must be one of " + ", ".join(_choices(field.annotation))
    reasons = _merged_reasons(field)
    template = (reasons.wrong_type if kind in WRONG_TYPE else reasons.out_of_range if kind in OUT_OF_RANGE
                else reasons.too_long if kind in ("too_long", "string_too_long") else None)
    template = template or TYPE_REASONS.get(kind)
    if template is None:
        return item["msg"]
    return template.format(**{**_bounds(field), **context})


def _metadata(annotation: Any) -> Iterator[Any]:
    """Every Annotated metadata object inside a type (through unions and lists)."""
    for arm in get_args(annotation):
        yield from _metadata(arm)
    yield from getattr(annotation, "__metadata__", ())


def _all_metadata(field: pydantic.fields.FieldInfo | None) -> list[Any]:
    if field is None:
        return []
    found = [*field.metadata, *_metadata(field.annotation)]
    return found + [inner for item in found if isinstance(item, pydantic.fields.FieldInfo) for inner in item.metadata]


def _merged_reasons(field: pydantic.fields.FieldInfo | None) -> Reasons:
    return next((item for item in _all_metadata(field) if isinstance(item, Reasons)), Reasons())


def _bounds(field: pydantic.fields.FieldInfo | None) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    for item in _all_metadata(field):
        for name, kind in BOUND_TYPES.items():
            if isinstance(item, kind):
                bounds.setdefault(name, getattr(item, name))
    return bounds


def _choices(annotation: Any) -> list[str]:
    for arm in (annotation, *get_args(annotation)):
        if isinstance(arm, type) and issubclass(arm, Enum):
            return [member.value for member in arm]
        if get_origin(arm) is Literal:
            return list(get_args(arm))
    return []
