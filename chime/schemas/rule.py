"""The alert Rule resource, the maintenance switch and a task's alert mute: what a client writes and reads.

One validation path (:func:`read_rule`, :func:`read_rule_patch`) for the API, the admin forms and the CLI."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chime.schemas.common import AwareInstant, Instant, Sent, read_body
from chime.validation import MAX_ID

Event = Literal["failed", "retrying", "failing", "recovered", "skipped", "missed", "overrun", "scheduler_down",
                "scheduler_up", "no_workers", "workers_back", "reconcile_repaired"]
MAX_CHANNELS_PER_RULE = 50
MAX_WINDOW_SECONDS = 86400
MAX_REPEAT_HOURS = 720
MAX_REASON_CHARS = 500
MAX_OVERRUN_SECONDS = 7 * 86400
OVERRUN_DESCRIPTION = ("`overrun`: a run of a task this rule covers is overrunning once it has been running this many "
                       "seconds; null: CHIME_OVERRUN_AFTER_SECONDS when set, else the task's own timeout")
ChannelId = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]  # an id the database can hold; true is not 1
OverrunSeconds = Annotated[int, Field(strict=True, ge=1, le=MAX_OVERRUN_SECONDS)]  # strict: true is not 1 s


class Received(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleInput(Received):
    """A new rule: a task's own (task_id) or a default one (task_id null: every task without its own, and
    the engine's events)."""

    task_id: int | None = Field(None, ge=1, le=MAX_ID, description="The task; null for a default rule")
    events: list[Event] = Field(min_length=1, max_length=12, description="Which events it sends")
    channel_ids: list[ChannelId] = Field(min_length=1, max_length=MAX_CHANNELS_PER_RULE,
                                   description="Where it sends them (channel ids)")
    enabled: bool = True
    failing_threshold: int = Field(3, ge=1, le=1000, description="`failing`: after this many failed runs in a row")
    repeat_every_hours: float | None = Field(None, ge=0.01, le=MAX_REPEAT_HOURS, description=(
        "While a task stays failing, send `failed`/`failing` again this often; null: once per failing streak"))
    group_window_seconds: int = Field(600, ge=0, le=MAX_WINDOW_SECONDS, description=(
        "Repeats of the same task and event within this window are counted and sent as one summary when it "
        "ends; 0: no grouping"))
    overrun_after_seconds: OverrunSeconds | None = Field(None, description=OVERRUN_DESCRIPTION)


class RulePatch(Received):
    """What may change of a rule (its task cannot)."""

    events: list[Event] | None = Field(None, min_length=1, max_length=12)
    channel_ids: list[ChannelId] | None = Field(None, min_length=1, max_length=MAX_CHANNELS_PER_RULE)
    enabled: bool | None = None
    failing_threshold: int | None = Field(None, ge=1, le=1000)
    repeat_every_hours: float | None = Field(None, ge=0.01, le=MAX_REPEAT_HOURS)
    group_window_seconds: int | None = Field(None, ge=0, le=MAX_WINDOW_SECONDS)
    overrun_after_seconds: OverrunSeconds | None = Field(None, description=OVERRUN_DESCRIPTION)


class RuleRead(Sent):
    id: int = Field(ge=1)
    task_id: int | None = Field(description="null: a default rule")
    task_name: str | None
    events: list[str]
    channel_ids: list[int]
    enabled: bool
    failing_threshold: int
    repeat_every_hours: float | None
    group_window_seconds: int
    overrun_after_seconds: int | None = Field(description=OVERRUN_DESCRIPTION)
    created_at: Instant
    updated_at: Instant


class MaintenanceInput(Received):
    on: bool = Field(description="true: every alert is muted (suppressed and counted) until turned off")
    reason: str = Field("", max_length=MAX_REASON_CHARS)


class MaintenanceRead(Sent):
    on: bool
    reason: str
    since: str | None = Field(description="When maintenance was turned on (ISO 8601)")
    suppressed: int = Field(ge=0, description="Alerts held back by mutes and maintenance so far")


class TaskMuteInput(Received):
    until: AwareInstant | None = Field(description="Mute the task's alerts until then (ISO 8601 with an offset); null unmutes")


class TaskMuteRead(Sent):
    task_id: int
    alerts_muted_until: Instant | None


def read_rule(payload: Any) -> RuleInput:
    return read_body(RuleInput, payload)


def read_rule_patch(payload: Any) -> RulePatch:
    return read_body(RulePatch, payload)


def read_maintenance(payload: Any) -> MaintenanceInput:
    return read_body(MaintenanceInput, payload)


def read_task_mute(payload: Any) -> TaskMuteInput:
    return read_body(TaskMuteInput, payload)
