"""Run controls on tasks, declared once: pause, bulk actions and clone (what a client sends and reads back).

The API validates its bodies with these models and the admin its forms (chime.controls calls
:func:`validate`), and the OpenAPI document shows them (webapp.api.openapi.COMPONENTS).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from chime.schemas.common import AwareInstant, Sent, read_body, storable, stripped
from chime.schemas.task import MAX_NAME_LENGTH, NOT_BLANK_NO_NUL, TaskId
from chime.validation import MAX_ID

MAX_PAUSE_REASON_CHARS = 500
MAX_BULK_IDS = 500
BULK_ACTIONS = ("enable", "disable", "pause", "resume", "run_now", "delete")
BulkAction = Literal["enable", "disable", "pause", "resume", "run_now", "delete"]


Reason = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_PAUSE_REASON_CHARS,
                              json_schema_extra={"pattern": NOT_BLANK_NO_NUL}),
                   BeforeValidator(stripped), AfterValidator(storable)]
ResumeAt = AwareInstant
CopyName = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_NAME_LENGTH,
                                json_schema_extra={"pattern": NOT_BLANK_NO_NUL}),
                     BeforeValidator(stripped), AfterValidator(storable)]


class PauseInput(BaseModel):
    """Pause a task: it is disabled with a reason, and resumes by itself at `resume_at` if given."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why the task is paused (shown on the task and in the list)")
    resume_at: ResumeAt | None = Field(
        None, description="When the task resumes by itself: an instant in the future, with a UTC offset")


class BulkInput(BaseModel):
    """One action on many tasks, all or nothing: an unknown id or a refused one changes nothing."""

    model_config = ConfigDict(extra="forbid")

    action: BulkAction = Field(description="enable, disable, pause, resume, run_now (OPERATOR) or delete (ADMIN)")
    ids: Annotated[list[TaskId], Field(strict=True, min_length=1, max_length=MAX_BULK_IDS)] = Field(
        description=f"The tasks' ids (at most {MAX_BULK_IDS})")
    reason: Reason | None = Field(None, description="pause only, and required there: why")
    resume_at: ResumeAt | None = Field(None, description="pause only: when the tasks resume by themselves")


class CloneInput(BaseModel):
    """Clone a task: the copy has the same definition (dependencies too) and starts disabled."""

    model_config = ConfigDict(extra="forbid")

    name: CopyName | None = Field(None, description="The copy's name (default: the first free of "
                                                    "'<name> (copy)', '<name> (copy 2)', ...)")


class BulkItem(Sent):
    """What a bulk action did to one task."""

    id: int = Field(ge=1)
    name: str
    outcome: Literal["enabled", "disabled", "paused", "resumed", "queued", "not_queued", "deleted"] = Field(
        description="not_queued: run_now stopped when Redis failed after earlier runs of the request were queued "
                    "(those stay queued and audited; this one and the rest were not queued)")
    job_id: str | None = Field(description="run_now: the queued RQ job's id; null otherwise")


class BulkResult(Sent):
    """The answer to a bulk action: one item per task, in the order the ids were sent."""

    action: BulkAction
    results: list[BulkItem]


REASONS = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "list_type": "must be a list of task ids",
    "too_short": "must list at least one task id",
    "too_long": f"must list at most {MAX_BULK_IDS} task ids",
    "int_type": f"must be a list of task ids (integers from 1 to {MAX_ID})",
    "greater_than_equal": f"must be a list of task ids (integers from 1 to {MAX_ID})",
    "less_than_equal": f"must be a list of task ids (integers from 1 to {MAX_ID})",
    "literal_error": "must be one of " + ", ".join(BULK_ACTIONS),
    "datetime_type": "must be an ISO-8601 date-time with a UTC offset",
}


def validate(model: type[BaseModel], payload: Any) -> Any:
    """Return `payload` validated as `model`, or raise ValidationError naming each bad field."""
    return read_body(model, payload, field_errors)


def field_errors(error: pydantic.ValidationError) -> dict[str, str]:
    """pydantic's errors as {field: reason}, the first reason of each field."""
    fields: dict[str, str] = {}
    for item in error.errors(include_url=False):
        context = item.get("ctx") or {}
        if item["type"] == "value_error":
            reason = str(context.get("error", item["msg"]))
        else:
            template = REASONS.get(item["type"])
            reason = template.format_map(context) if template else item["msg"]
        fields.setdefault(str(item["loc"][0] if item["loc"] else "body")[:100], reason)
    return fields
