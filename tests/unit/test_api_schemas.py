"""Unit tests for the response schemas (chime.schemas) and their OpenAPI 3.0 form (webapp.api.openapi).

The expected documents are the API's documented shapes (README "API"): instants in ISO 8601 with a
+00:00 offset, every field always present, null where there is no value. The OpenAPI forms follow the
OpenAPI 3.0.3 specification: `nullable: true` instead of a null type (with null among an enum's values),
no `const`, references only under #/components/.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from enum import Enum
from types import SimpleNamespace
from typing import Literal
from zoneinfo import ZoneInfo

import pydantic
import pytest
from pydantic import BaseModel, Field

from chime.schemas.common import Instant, Sent
from chime.schemas.execution import ExecutionDetail, ExecutionRead, RunResult
from chime.schemas.health import Health, Readiness
from chime.schemas.notification import NotificationRead
from chime.schemas.stats import Stats
from webapp.api.openapi import OpenApi30Schema
from webapp.errors import ErrorBody

UTC = timezone.utc
AT = datetime(2026, 3, 29, 0, 30, 0, 250_000, tzinfo=UTC)


class Stamped(Sent):
    at: Instant
    maybe_at: Instant | None


def test_an_instant_is_sent_in_utc_with_an_offset_and_its_microseconds() -> None:
    berlin = datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Berlin"))  # just after the DST change
    assert Stamped.of(at=berlin, maybe_at=AT) == {"at": "2026-03-29T01:30:00+00:00",
                                                  "maybe_at": "2026-03-29T00:30:00.250000+00:00"}
    assert Stamped.of(at=AT, maybe_at=None)["maybe_at"] is None


def test_an_execution_is_sent_with_every_field_and_null_where_it_has_no_value() -> None:
    row = SimpleNamespace(id=7, task_id=None, task_name="report", status="RETRYING", attempt=2, trigger="RETRY",
                          scheduled_for=AT, started_at=AT + timedelta(seconds=1), finished_at=None, duration_ms=None,
                          message=None, result={"rows": [1, 2.5, None]}, worker="w-1", job_id=None,
                          retry_at=AT + timedelta(minutes=1), created_at=AT, args=None, traceback="Traceback ...")
    assert ExecutionRead.dump(row) == {
        "id": 7, "task_id": None, "task_name": "report", "status": "RETRYING", "attempt": 2, "trigger": "RETRY",
        "scheduled_for": "2026-03-29T00:30:00.250000+00:00", "started_at": "2026-03-29T00:30:01.250000+00:00",
        "finished_at": None, "duration_ms": None, "message": "", "result": {"rows": [1, 2.5, None]},
        "worker": "w-1", "job_id": None, "retry_at": "2026-03-29T00:31:00.250000+00:00",
        "created_at": "2026-03-29T00:30:00.250000+00:00", "args": None,
    }  # a list leaves the traceback out; one execution (ExecutionDetail) has it


def test_one_execution_is_sent_with_its_traceback_and_the_arguments_it_was_given() -> None:
    row = SimpleNamespace(id=7, task_id=3, task_name="report", status="FAILED", attempt=1, trigger="MANUAL",
                          scheduled_for=AT, started_at=AT, finished_at=AT, duration_ms=5, message="RuntimeError: x",
                          result=None, worker="w-1", job_id="chime-3-1-1-m", retry_at=None, created_at=AT,
                          args={"message": "given"}, traceback="Traceback (most recent call last):\nRuntimeError: x\n")
    sent = ExecutionDetail.dump(row)
    assert sent["traceback"] == "Traceback (most recent call last):\nRuntimeError: x\n"
    assert sent["args"] == {"message": "given"}


def test_a_notification_without_a_message_is_sent_with_an_empty_one() -> None:
    row = SimpleNamespace(id=1, task_id=3, execution_id=None, level="ERROR", title="'report' failed", message=None,
                          read=False, created_at=AT, count=1, last_at=None)
    assert NotificationRead.dump(row) == {"id": 1, "task_id": 3, "execution_id": None, "level": "ERROR",
                                          "title": "'report' failed", "message": "", "read": False,
                                          "created_at": "2026-03-29T00:30:00.250000+00:00", "count": 1,
                                          "last_at": None}


def test_a_manual_run_says_so() -> None:
    assert RunResult.of(job_id="chime-1-x", task_id=1, trigger="MANUAL") == {
        "job_id": "chime-1-x", "task_id": 1, "trigger": "MANUAL"}
    with pytest.raises(pydantic.ValidationError):
        RunResult.of(job_id="chime-1-x", task_id=1, trigger="SCHEDULE")


def test_a_document_with_a_key_its_schema_does_not_list_is_refused_not_sent() -> None:
    with pytest.raises(pydantic.ValidationError):
        Readiness.of(status="ok", reasons=[], database="ok", redis="ok", colour="blue")


def test_a_health_document_names_only_known_components_as_reasons() -> None:
    checks = {"database": "ok", "redis": "error: ConnectionError", "scheduler": "unknown", "workers": "unknown",
              "scheduler_heartbeat_age_seconds": None, "worker_count": None}
    assert Health.of(status="unavailable", reasons=["redis"], **checks)["reasons"] == ["redis"]
    with pytest.raises(pydantic.ValidationError):
        Health.of(status="unavailable", reasons=["disk"], **checks)


def test_stats_keep_null_for_what_redis_could_not_tell() -> None:
    stats = Stats.of(
        tasks={"total": 0, "enabled": 0, "by_status": {}},
        executions={"total": 0, "by_status": {}, "last_24h": 0},
        next_runs=[{"task_id": 1, "name": "a", "next_run_at": AT}],
        queues=None,
        workers={"count": None, "names": []},
        scheduler={"alive": False, "last_heartbeat": None},
        reconciler={"last_run_at": None, "last_report": None},
        notifications={"unread": 0},
    )
    assert stats["queues"] is None and stats["workers"] == {"count": None, "names": []}
    assert stats["next_runs"] == [{"task_id": 1, "name": "a", "next_run_at": "2026-03-29T00:30:00.250000+00:00"}]


def test_an_error_body_has_fields_only_when_some_field_is_named() -> None:
    assert ErrorBody(error="not_found", message="No task with id 9 was found").model_dump(exclude_none=True) == {
        "error": "not_found", "message": "No task with id 9 was found"}
    body = ErrorBody(error="validation_error", message="Invalid input", fields={"name": "required"})
    assert body.model_dump(exclude_none=True)["fields"] == {"name": "required"}


# --------------------------------------------------------------------------- the OpenAPI 3.0 dialect


class Colour(str, Enum):
    """A colour (this text is the enum's, not the field's)."""

    RED = "RED"
    BLUE = "BLUE"


class Sample(BaseModel):
    count: int | None = Field(ge=0)
    colour: Colour = Field(description="What it looks like")
    shade: Colour | None
    kind: Literal["only"]
    search: str = Field(None, description="Absent: no filter")
    limit: int | None = Field(5, ge=1)


def openapi_properties() -> dict:
    return Sample.model_json_schema(schema_generator=OpenApi30Schema)["properties"]


def test_an_optional_value_is_nullable_rather_than_a_union_with_null() -> None:
    assert openapi_properties()["count"] == {"type": "integer", "minimum": 0, "nullable": True}


def test_an_enum_is_written_inline_and_an_optional_one_lists_null_among_its_values() -> None:
    properties = openapi_properties()
    assert properties["colour"] == {"type": "string", "enum": ["RED", "BLUE"], "description": "What it looks like"}
    assert properties["shade"] == {"type": "string", "enum": ["RED", "BLUE", None], "nullable": True}


def test_a_single_allowed_value_is_an_enum_of_one_since_openapi_3_0_has_no_const() -> None:
    assert openapi_properties()["kind"] == {"type": "string", "enum": ["only"]}


def test_an_argument_absent_by_default_has_no_null_default_but_a_real_default_is_kept() -> None:
    properties = openapi_properties()
    assert properties["search"] == {"type": "string", "description": "Absent: no filter"}
    assert properties["limit"]["default"] == 5


def test_no_generated_title_is_written() -> None:
    schema = Sample.model_json_schema(schema_generator=OpenApi30Schema)
    assert "title" not in schema and all("title" not in p for p in schema["properties"].values())
