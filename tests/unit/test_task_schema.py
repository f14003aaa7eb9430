"""The task schema: what a client may write, the reason it is told when it may not, and what it reads back.

Pure: no database, no Redis. Defaults and reasons are those the README and the API document promise.
"""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

import jobs.builtin  # noqa: F401 - registers the built-in jobs
from chime.errors import ValidationError
from chime.models import Status
from chime.schemas.task import TaskInput, TaskPatch, TaskRead, task_to_dict, validate_task

PING = {"name": "ping", "job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL", "interval_seconds": 60}
TEN_YEARS_SECONDS = 10 * 365 * 24 * 3600


def reasons(payload: Any, **options: Any) -> dict[str, str]:
    """The {field: reason} a payload is refused with."""
    with pytest.raises(ValidationError) as caught:
        validate_task(payload, **options)
    return caught.value.fields


# --------------------------------------------------------------------------- what is required, what defaults


def test_a_task_needs_a_name_a_job_and_a_schedule_type() -> None:
    assert reasons({}) == {"name": "required", "job": "required", "schedule_type": "required"}


def test_a_task_given_only_what_is_required_takes_the_documented_defaults() -> None:
    task = validate_task(PING)
    assert (task["enabled"], task["max_retries"], task["retry_backoff_seconds"], task["timeout_seconds"]) == (
        True, 3, 60, 300)
    assert (task["overlap"], task["misfire_grace_seconds"], task["queue"], task["notify"]) == (
        "SKIP", 300, "default", "ALWAYS")
    assert (task["timezone"], task["description"], task["depends_on"]) == ("UTC", "", [])


def test_null_for_an_optional_field_means_its_default() -> None:
    task = validate_task({**PING, "max_retries": None, "timezone": None, "description": None, "notify": None})
    assert (task["max_retries"], task["timezone"], task["description"], task["notify"]) == (3, "UTC", "", "ALWAYS")


def test_null_for_a_required_field_is_as_if_it_were_missing() -> None:
    assert reasons({**PING, "name": None}) == {"name": "required"}


def test_the_body_must_be_a_json_object() -> None:
    assert reasons([PING]) == {"body": "must be a JSON object"}


def test_an_unknown_field_is_refused_and_a_read_only_one_is_ignored() -> None:
    assert reasons({**PING, "colour": "blue"}) == {"colour": "unknown field"}
    task = validate_task({**PING, "id": 7, "status": "FAILED", "created_at": "yesterday", "version": 9})
    assert "id" not in task and "status" not in task


# --------------------------------------------------------------------------- one field at a time


def test_a_name_is_trimmed_and_may_not_be_blank_or_longer_than_200_characters() -> None:
    assert validate_task({**PING, "name": "  ping  "})["name"] == "ping"
    assert reasons({**PING, "name": "   "}) == {"name": "must not be empty"}
    assert reasons({**PING, "name": "x" * 201}) == {"name": "must be at most 200 characters"}


@pytest.mark.parametrize("text,reason", [("a\x00b", "must not contain NUL characters"),
                                         ("lone \ud800", "must be valid Unicode text (no lone surrogates)")])
def test_text_that_cannot_be_stored_is_refused_saying_why(text: str, reason: str) -> None:
    assert reasons({**PING, "description": text}) == {"description": reason}


@pytest.mark.parametrize("value", [True, "60", 60.0, [60]])
def test_a_count_of_seconds_must_be_a_json_integer(value: Any) -> None:
    assert reasons({**PING, "interval_seconds": value}) == {"interval_seconds": "must be an integer"}


def test_an_integer_out_of_range_is_refused_naming_both_bounds() -> None:
    assert reasons({**PING, "interval_seconds": 0}) == {"interval_seconds": f"must be between 1 and {TEN_YEARS_SECONDS}"}
    assert reasons({**PING, "max_retries": -1}) == {"max_retries": "must be between 0 and 100"}


def test_a_choice_outside_its_values_is_refused_listing_them() -> None:
    assert reasons({**PING, "schedule_type": "WEEKLY"}) == {"schedule_type": "must be one of ONE_TIME, CRON, INTERVAL"}
    assert reasons({**PING, "notify": "SOMETIMES"}) == {"notify": "must be one of ALWAYS, ON_FAILURE, NEVER"}
    assert reasons({**PING, "queue": "urgent"}) == {"queue": "must be one of high, default, low"}


def test_enabled_must_be_a_json_boolean() -> None:
    assert reasons({**PING, "enabled": "yes"}) == {"enabled": "must be true or false"}


def test_an_unknown_time_zone_is_refused() -> None:
    assert "Unknown time zone" in reasons({**PING, "timezone": "Mars/Olympus"})["timezone"]


def test_dependencies_are_task_ids_kept_once_each_in_order() -> None:
    assert validate_task({**PING, "depends_on": [3, 1, 3]})["depends_on"] == [1, 3]
    assert reasons({**PING, "depends_on": "1"}) == {"depends_on": "must be a list of task ids"}
    assert reasons({**PING, "depends_on": [0]}) == {"depends_on": f"must list task ids between 1 and {2**31 - 1}"}
    assert reasons({**PING, "depends_on": list(range(1, 102))}) == {"depends_on": "must list at most 100 tasks"}


# --------------------------------------------------------------------------- rules between fields


@pytest.mark.parametrize("schedule_type,field", [("ONE_TIME", "run_at"), ("CRON", "cron"),
                                                 ("INTERVAL", "interval_seconds")])
def test_each_schedule_type_requires_its_own_field(schedule_type: str, field: str) -> None:
    payload = {"name": "n", "job": "noop", "schedule_type": schedule_type}
    assert reasons(payload) == {field: f"required for schedule_type {schedule_type}"}


def test_a_field_of_another_schedule_type_is_refused() -> None:
    assert reasons({**PING, "cron": "0 9 * * *"}) == {"cron": "not allowed for schedule_type INTERVAL"}
    assert reasons({**PING, "schedule_type": "ONE_TIME", "interval_seconds": None, "run_at": "2031-01-01T00:00:00Z",
                    "start_at": "2030-01-01T00:00:00Z"}) == {"start_at": "not allowed for schedule_type ONE_TIME"}


def test_a_run_at_without_an_offset_is_read_in_the_tasks_time_zone() -> None:
    task = validate_task({"name": "n", "job": "noop", "schedule_type": "ONE_TIME", "run_at": "2031-06-01T09:00:00",
                          "timezone": "Europe/Berlin"})
    assert task["run_at"] == datetime(2031, 6, 1, 7, 0, tzinfo=timezone.utc)  # CEST is UTC+2


def test_a_run_at_that_is_no_date_time_says_what_to_write() -> None:
    reason = reasons({"name": "n", "job": "noop", "schedule_type": "ONE_TIME", "run_at": "tomorrow"})["run_at"]
    assert reason.startswith("must be an ISO-8601 date-time")


def test_the_end_must_be_later_than_the_start() -> None:
    payload = {**PING, "start_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"}
    assert reasons(payload) == {"end_at": "must be later than start_at"}


def test_a_cron_expression_is_checked_and_its_spacing_normalised() -> None:
    cron_task = {"name": "n", "job": "noop", "schedule_type": "CRON"}
    assert validate_task({**cron_task, "cron": " 0  9 * * 1-5 "})["cron"] == "0 9 * * 1-5"
    assert "out of range" in reasons({**cron_task, "cron": "61 * * * *"})["cron"]


def test_job_arguments_are_checked_against_the_job_each_under_its_own_name() -> None:
    assert reasons({**PING, "args": {}}) == {"args.message": "required"}
    assert reasons({**PING, "args": {"message": "x", "extra": 1}}) == {"args.extra": "unknown argument"}
    assert reasons({**PING, "args": "text"}) == {"args": "must be an object"}


def test_an_argument_nested_deeper_than_32_levels_is_refused() -> None:
    deep: Any = 1
    for _ in range(33):
        deep = [deep]
    payload = {**PING, "job": "http_request", "args": {"url": "https://example.com/", "json": deep}}
    assert reasons(payload) == {"args.json": "must not be nested more than 32 levels deep"}


def test_optional_job_arguments_take_the_jobs_defaults() -> None:
    args = validate_task({**PING, "job": "http_request", "args": {"url": "https://example.com/"}})["args"]
    assert (args["method"], args["timeout_seconds"]) == ("GET", 30)


def test_an_unknown_job_is_refused_listing_the_known_ones() -> None:
    reason = reasons({**PING, "job": "nope"})["job"]
    assert "echo" in reason and "noop" in reason


def test_shell_jobs_are_refused_unless_allowed() -> None:
    shell = {**PING, "job": "shell", "args": {"command": "true"}}
    assert "shell jobs are disabled" in reasons(shell, allow_shell=False)["job"]


def test_every_bad_field_is_named_at_once() -> None:
    fields = reasons({**PING, "name": "", "interval_seconds": 0, "timezone": "Mars/Olympus", "args": {}})
    assert set(fields) == {"name", "interval_seconds", "timezone", "args.message"}


# --------------------------------------------------------------------------- PATCH


CURRENT = {**validate_task(PING), "max_retries": 7}


def test_a_patch_keeps_the_fields_it_does_not_give() -> None:
    task = validate_task({"interval_seconds": 3600}, current=CURRENT)
    assert (task["name"], task["interval_seconds"], task["max_retries"]) == ("ping", 3600, 7)


def test_a_patch_with_null_resets_a_field_to_its_default() -> None:
    assert validate_task({"max_retries": None}, current=CURRENT)["max_retries"] == 3


def test_a_patch_switching_the_schedule_type_clears_the_other_types_fields() -> None:
    task = validate_task({"schedule_type": "CRON", "cron": "@daily"}, current=CURRENT)
    assert (task["schedule_type"], task["cron"], task["interval_seconds"]) == ("CRON", "@daily", None)


# --------------------------------------------------------------------------- what is read back


def stored_task(**fields: Any) -> SimpleNamespace:
    at = datetime(2031, 1, 1, 12, 0, tzinfo=timezone.utc)
    values = {**validate_task(PING), "id": 5, "status": Status.PENDING, "next_run_at": at, "last_run_at": None,
              "last_status": None, "created_at": at, "updated_at": at, "paused_reason": None, "paused_by": None,
              "paused_at": None, "resume_at": None, **fields}
    values.pop("depends_on")
    return SimpleNamespace(**values, parents=[SimpleNamespace(id=2)])


def test_a_task_reads_back_with_every_field_of_the_api_and_instants_with_a_utc_offset() -> None:
    shown = task_to_dict(stored_task())
    assert set(shown) == {"id", "name", "description", "job", "args", "schedule_type", "run_at", "cron",
                          "interval_seconds", "timezone", "start_at", "end_at", "enabled", "max_retries",
                          "retry_backoff_seconds", "timeout_seconds", "depends_on", "overlap",
                          "misfire_grace_seconds", "queue", "notify", "status", "next_run_at", "last_run_at",
                          "last_status", "created_at", "updated_at", "paused_reason", "paused_by", "paused_at",
                          "resume_at"}
    assert (shown["next_run_at"], shown["run_at"], shown["depends_on"]) == ("2031-01-01T12:00:00+00:00", None, [2])
    assert (shown["schedule_type"], shown["overlap"], shown["status"]) == ("INTERVAL", "SKIP", "PENDING")


def test_a_task_read_back_is_accepted_as_it_is() -> None:
    assert validate_task(task_to_dict(stored_task())) == validate_task({**PING, "depends_on": [2]})


def test_the_input_document_requires_what_a_create_requires_and_the_patch_document_nothing() -> None:
    assert TaskInput.model_json_schema()["required"] == ["name", "job", "schedule_type"]
    assert "required" not in TaskPatch.model_json_schema()
    assert TaskRead.model_json_schema(mode="serialization")["properties"]["id"]["readOnly"] is True
