"""The task form: it stores exactly what the API would, and shows errors next to fields."""
from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.admin.conftest import AdminClient, add_task
from chime import services
from webapp.admin import forms
from chime.extensions import db
from chime.models import Task
from chime.schemas.task import task_to_dict, validate_task
from chime.unit_of_work import unit_of_work

VOLATILE = {"id", "name", "created_at", "updated_at", "next_run_at"}
BASE_FORM = {
    "description": "", "timezone": "UTC", "enabled": "on", "max_retries": "3", "retry_backoff_seconds": "60",
    "timeout_seconds": "300", "misfire_grace_seconds": "300", "overlap": "SKIP", "queue": "default",
    "notify": "ALWAYS",
}


def form(**fields: Any) -> dict[str, Any]:
    return {**BASE_FORM, **fields}


def stored(name: str) -> Task:
    task = db.session.scalar(select(Task).where(Task.name == name))
    assert task is not None, f"no task {name!r}"
    return task


def same_as_api(admin: AdminClient, form_name: str, api_payload: dict[str, Any]) -> None:
    """The task the form stored equals the one the API stores for the same payload."""
    response = admin.client.post("/api/tasks/", json={**api_payload, "name": "via-api"},
                                 headers={"Authorization": "Bearer test-token-123"})
    assert response.status_code == 201, response.get_json()
    via_form = {k: v for k, v in task_to_dict(stored(form_name)).items() if k not in VOLATILE}
    via_api = {k: v for k, v in response.get_json().items() if k not in VOLATILE}
    assert via_form == via_api


def test_create_an_interval_task(admin: AdminClient) -> None:
    response = admin.post("/tasks/new", form(name="ping", job="echo", **{"args.echo.message": "hi"},
                                             schedule_type="INTERVAL", interval_seconds="90"))
    assert response.status_code == 302
    task = stored("ping")
    assert response.headers["Location"] == f"/tasks/{task.id}"
    assert (task.interval_seconds, task.args, task.enabled) == (90, {"message": "hi"}, True)
    assert task.next_run_at is not None
    same_as_api(admin, "ping", {"job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL",
                                "interval_seconds": 90})
    assert "created" in admin.html(f"/tasks/{task.id}")


def test_create_a_cron_task_with_a_window_in_its_time_zone(admin: AdminClient) -> None:
    response = admin.post("/tasks/new", form(
        name="report", job="noop", schedule_type="CRON", cron="0 9 * * 1-5", timezone="Europe/Berlin",
        start_at="2031-01-05T08:30", end_at="2031-12-31T18:00", max_retries="0", queue="high",
        notify="ON_FAILURE", overlap="ALLOW", misfire_grace_seconds="60", timeout_seconds="30",
        retry_backoff_seconds="5", description="Weekday report"))
    assert response.status_code == 302
    task = stored("report")
    assert task.start_at.isoformat() == "2031-01-05T07:30:00+00:00"  # 08:30 in Berlin (CET)
    assert task.end_at.isoformat() == "2031-12-31T17:00:00+00:00"
    same_as_api(admin, "report", {
        "job": "noop", "schedule_type": "CRON", "cron": "0 9 * * 1-5", "timezone": "Europe/Berlin",
        "start_at": "2031-01-05T08:30", "end_at": "2031-12-31T18:00", "max_retries": 0, "queue": "high",
        "notify": "ON_FAILURE", "overlap": "ALLOW", "misfire_grace_seconds": 60, "timeout_seconds": 30,
        "retry_backoff_seconds": 5, "description": "Weekday report"})


def test_create_a_one_time_task_read_in_its_time_zone(admin: AdminClient) -> None:
    response = admin.post("/tasks/new", form(name="once", job="noop", schedule_type="ONE_TIME",
                                             run_at="2031-06-01T09:00", timezone="Europe/Berlin"))
    assert response.status_code == 302
    task = stored("once")
    assert task.run_at.isoformat() == "2031-06-01T07:00:00+00:00"
    assert task.next_run_at == task.run_at
    same_as_api(admin, "once", {"job": "noop", "schedule_type": "ONE_TIME", "run_at": "2031-06-01T09:00:00",
                                "timezone": "Europe/Berlin"})


def test_without_js_the_other_schedule_types_fields_are_ignored(admin: AdminClient) -> None:
    """All schedule fields are visible without JS; only the chosen type's are used."""
    response = admin.post("/tasks/new", form(name="nojs", job="noop", schedule_type="INTERVAL",
                                             interval_seconds="60", cron="not a cron", run_at="2031-01-01T00:00",
                                             **{"args.echo.message": "other job's argument"}))
    assert response.status_code == 302
    task = stored("nojs")
    assert (task.schedule_type, task.cron, task.run_at, task.args) == ("INTERVAL", None, None, {})


def test_typed_job_arguments(admin: AdminClient) -> None:
    response = admin.post("/tasks/new", form(
        name="http", job="http_request", schedule_type="INTERVAL", interval_seconds="60", **{
            "args.http_request.url": "https://example.com/hook",
            "args.http_request.method": "POST",
            "args.http_request.headers": '{"X-Token": "abc"}',
            "args.http_request.json": '{"ping": [1, 2]}',
            "args.http_request.timeout_seconds": "2.5",
            "args.http_request.expected_statuses": "[200, 204]",
        }))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert stored("http").args == {"url": "https://example.com/hook", "method": "POST",
                                   "headers": {"X-Token": "abc"}, "json": {"ping": [1, 2]},
                                   "timeout_seconds": 2.5, "expected_statuses": [200, 204]}


def test_optional_arguments_left_empty_take_their_defaults(admin: AdminClient) -> None:
    admin.post("/tasks/new", form(name="http", job="http_request", schedule_type="INTERVAL",
                                  interval_seconds="60", **{"args.http_request.url": "https://example.com/"}))
    assert stored("http").args == {"url": "https://example.com/", "method": "GET", "headers": None, "json": None,
                                   "timeout_seconds": 30, "expected_statuses": None}


@pytest.mark.parametrize("depth,message", [(10_000, "is nested too deeply"),
                                            (33, "must not be nested more than 32 levels deep")])
def test_json_argument_nested_too_deep_is_an_error_on_its_field(admin: AdminClient, depth: int, message: str) -> None:
    response = admin.post("/tasks/new", form(name="deep", job="http_request", schedule_type="INTERVAL",
                                             interval_seconds="60", **{"args.http_request.url": "https://example.com/",
                                                                       "args.http_request.json": "[" * depth + "]" * depth}))
    assert response.status_code == 400
    assert error_of(response.get_data(as_text=True), "arg-http_request-json") == message
    assert count_tasks() == 0


def error_of(html: str, input_id: str) -> str:
    match = re.search(rf'<p class="field-error" id="{re.escape(input_id)}-error">([^<]*)</p>', html)
    assert match, f"no error shown next to #{input_id}"
    return match.group(1)


def count_tasks() -> int:
    return db.session.scalar(select(func.count()).select_from(Task))


@pytest.mark.parametrize("digits", ["٣٠", "３０", "²", "30.0", "1e3", " 3 0 "],
                         ids=["arabic-indic", "fullwidth", "superscript", "decimal", "exponent", "spaced"])
def test_numbers_not_written_with_ascii_digits_are_a_field_error(admin: AdminClient, digits: str) -> None:
    # Python's int() reads '٣٠' and '３０' as 30 and str.isdigit() is true for '²'; an
    # <input type=number> and a JSON number (the API) never hold them, so the form refuses them too.
    response = admin.post("/tasks/new", form(name="digits", job="noop", schedule_type="INTERVAL",
                                             interval_seconds=digits, max_retries=digits))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert error_of(html, "f-interval_seconds") == "must be a whole number written with the digits 0-9"
    assert error_of(html, "f-max_retries") == "must be a whole number written with the digits 0-9"
    assert count_tasks() == 0


def test_validation_errors_appear_next_to_their_fields_and_nothing_is_stored(admin: AdminClient) -> None:
    response = admin.post("/tasks/new", form(name="  ", job="echo", schedule_type="INTERVAL", interval_seconds="0",
                                             timezone="Mars/Olympus", max_retries="lots",
                                             description="kept as typed", **{"args.echo.message": ""}))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert error_of(html, "f-name") == "must not be empty"
    assert "between 1 and" in error_of(html, "f-interval_seconds")
    assert "Unknown time zone" in error_of(html, "f-timezone")
    assert error_of(html, "f-max_retries") == "must be a whole number written with the digits 0-9"
    assert error_of(html, "arg-echo-message") == "required"
    assert 'aria-invalid="true"' in html
    assert ">kept as typed</textarea>" in html and 'value="Mars/Olympus"' in html and 'value="lots"' in html
    assert 'href="#f-timezone"' in html  # the summary links to the field
    assert count_tasks() == 0


def test_missing_schedule_field_and_bad_cron(admin: AdminClient) -> None:
    html = admin.post("/tasks/new", form(name="c", job="noop", schedule_type="CRON", cron="61 * * * *")
                      ).get_data(as_text=True)
    assert "out of range" in error_of(html, "f-cron")
    html = admin.post("/tasks/new", form(name="o", job="noop", schedule_type="ONE_TIME")).get_data(as_text=True)
    assert error_of(html, "f-run_at") == "required for schedule_type ONE_TIME"
    assert count_tasks() == 0


def test_invalid_json_argument_is_reported_with_the_other_errors(admin: AdminClient) -> None:
    response = admin.post("/tasks/new", form(name="", job="http_request", schedule_type="INTERVAL",
                                             interval_seconds="60", **{"args.http_request.url": "ftp://x",
                                                                       "args.http_request.headers": "{oops"}))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert error_of(html, "arg-http_request-headers").startswith("is not valid JSON")
    assert "http" in error_of(html, "arg-http_request-url")
    assert error_of(html, "f-name") == "required"
    assert ">{oops</textarea>" in html
    assert count_tasks() == 0


def test_shell_jobs_follow_allow_shell_jobs(admin: AdminClient, app: Any) -> None:
    data = form(name="sh", job="shell", schedule_type="INTERVAL", interval_seconds="60",
                **{"args.shell.command": "true"})
    html = admin.post("/tasks/new", data).get_data(as_text=True)
    assert "shell jobs are disabled" in error_of(html, "f-job")
    assert "(disabled: set ALLOW_SHELL_JOBS=true)" in admin.html("/tasks/new")


def test_duplicate_name_is_409_next_to_the_name(admin: AdminClient) -> None:
    add_task("taken")
    response = admin.post("/tasks/new", form(name="taken", job="noop", schedule_type="INTERVAL",
                                             interval_seconds="60"))
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert error_of(html, "f-name") == "already taken"
    assert "A task named &#39;taken&#39; already exists" in html
    assert count_tasks() == 1


def test_depends_on_is_a_multi_select_of_other_tasks(admin: AdminClient) -> None:
    first, second = add_task("first"), add_task("second")
    html = admin.html("/tasks/new")
    assert f'<option value="{first.id}">first</option>' in html
    response = admin.post("/tasks/new", form(name="child", job="noop", schedule_type="INTERVAL",
                                             interval_seconds="60", depends_on=[str(first.id), str(second.id)]))
    assert response.status_code == 302
    child = stored("child")
    assert [p.id for p in child.parents] == [first.id, second.id]
    edit = admin.html(f"/tasks/{child.id}/edit")
    assert f'<option value="{first.id}" selected>first</option>' in edit
    assert f'value="{child.id}"' not in edit.split('id="f-depends_on"')[1].split("</select>")[0]


def test_edit_shows_the_stored_values_and_replaces_the_task(admin: AdminClient) -> None:
    with unit_of_work():
        task = services.create_task({"name": "nightly", "job": "echo", "args": {"message": "a"},
                                     "schedule_type": "CRON", "cron": "30 2 * * *", "timezone": "Europe/Berlin",
                                     "start_at": "2031-03-01T02:30", "queue": "low"}, allow_shell=False)
    start_at = task.start_at
    html = admin.html(f"/tasks/{task.id}/edit")
    assert 'value="nightly"' in html and 'value="30 2 * * *"' in html
    assert 'value="2031-03-01T02:30"' in html  # shown in the task's zone
    assert 'id="f-schedule_type-CRON" name="schedule_type" value="CRON" checked' in html
    assert '<option value="low" selected>' in html
    response = admin.post(f"/tasks/{task.id}/edit", form(name="nightly-2", job="echo", schedule_type="INTERVAL",
                                                         interval_seconds="120", **{"args.echo.message": "b"}))
    assert response.status_code == 302
    db.session.expire_all()
    task = db.session.get(Task, task.id)
    assert (task.name, task.schedule_type, task.cron, task.interval_seconds, task.queue,
            task.args, task.version) == ("nightly-2", "INTERVAL", None, 120, "default", {"message": "b"}, 2)
    assert start_at is not None


def test_edit_can_clear_the_start_and_end(admin: AdminClient) -> None:
    with unit_of_work():
        task = services.create_task({"name": "windowed", "job": "noop", "schedule_type": "INTERVAL",
                                     "interval_seconds": 60, "start_at": "2031-03-01T02:30",
                                     "end_at": "2032-03-01T02:30"}, allow_shell=False)
    response = admin.post(f"/tasks/{task.id}/edit", form(name="windowed", job="noop", schedule_type="INTERVAL",
                                                         interval_seconds="60", start_at="", end_at=""))
    assert response.status_code == 302
    db.session.expire_all()
    task = db.session.get(Task, task.id)
    assert (task.start_at, task.end_at) == (None, None)


def test_edit_errors_keep_the_task_unchanged(admin: AdminClient) -> None:
    add_task("other")
    task = add_task("mine")
    response = admin.post(f"/tasks/{task.id}/edit", form(name="other", job="noop", schedule_type="INTERVAL",
                                                         interval_seconds="60"))
    assert response.status_code == 409
    response = admin.post(f"/tasks/{task.id}/edit", form(name="mine", job="noop", schedule_type="INTERVAL",
                                                         interval_seconds="60", depends_on=[str(task.id)]))
    assert response.status_code == 400
    assert "cannot depend on itself" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Task, task.id).name == "mine"


@pytest.mark.parametrize("payload", [
    {"name": "a", "job": "echo", "args": {"message": "x"}, "schedule_type": "INTERVAL", "interval_seconds": 61,
     "start_at": "2031-01-01T00:00:30", "timezone": "Asia/Tokyo", "enabled": False},
    {"name": "b", "job": "http_request", "args": {"url": "https://e.com", "headers": {"A": "b"},
                                                  "expected_statuses": [200]},
     "schedule_type": "CRON", "cron": "*/5 * * * *", "end_at": "2032-01-01T00:00", "notify": "NEVER"},
    {"name": "c", "job": "fail", "args": {"times": 2}, "schedule_type": "ONE_TIME",
     "run_at": "2031-10-26T02:30", "timezone": "Europe/Berlin", "max_retries": 0},
])
def test_the_edit_form_round_trips_a_task_unchanged(app: Any, payload: dict[str, Any]) -> None:
    with unit_of_work():
        task = services.create_task(payload, allow_shell=False)
    values = forms.values_from_task(task)
    built, errors = forms.payload_from_values(values)
    assert errors == {}
    again = validate_task(built, allow_shell=False)
    assert again == validate_task(services.current_fields(task), allow_shell=False)
