"""Your own jobs in the API and the admin: a module named by CHIME_JOB_MODULES is listed with its parameters
by GET /api/jobs/ and in the admin's job select, its tasks are validated like a built-in's, and a job's
context parameter is never an argument a task may set."""
from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jobs.registry as registry
from tests.admin.conftest import AdminClient, sign_in
from tests.conftest import ApiClient, app_on
from webapp.auth import create_user

MODULE = "chime_test_own_jobs"
SOURCE = '''
    from jobs import JobContext, job

    @job("send_report")
    def send_report(recipient: str, pages: int = 3, context: JobContext | None = None) -> dict:
        """Send the weekly report."""
        return {"to": recipient, "pages": pages}
'''


@pytest.fixture
def app(database_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The app with CHIME_JOB_MODULES naming a module of the test's own (overrides tests/conftest.py's)."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    with registry.temporary(), app_on(database_url, redis_url, JOB_MODULES=(MODULE,)) as app:
        yield app
    sys.modules.pop(MODULE, None)


def test_the_jobs_list_shows_the_module_s_job_with_its_parameters(api: ApiClient) -> None:
    jobs = {job["name"]: job for job in api.get("/api/jobs/").get_json()}

    assert jobs["send_report"] == {"name": "send_report", "description": "Send the weekly report.", "parameters": [
        {"name": "recipient", "type": "string", "required": True, "default": None, "nullable": False},
        {"name": "pages", "type": "integer", "required": False, "default": 3, "nullable": False}]}
    assert "echo" in jobs


def test_a_task_of_the_module_s_job_is_validated_like_a_built_in_s(api: ApiClient) -> None:
    task = {"name": "weekly", "job": "send_report", "schedule_type": "INTERVAL", "interval_seconds": 60}

    created = api.post("/api/tasks/", {**task, "args": {"recipient": "ops@example.com"}})
    refused = api.post("/api/tasks/", {**task, "name": "bad", "args": {"pages": "many"}})

    assert created.status_code == 201, created.get_json()
    assert created.get_json()["args"] == {"recipient": "ops@example.com", "pages": 3}
    assert refused.status_code == 400
    assert set(refused.get_json()["fields"]) == {"args.recipient", "args.pages"}


def test_a_task_that_sets_the_job_s_context_is_refused(api: ApiClient) -> None:
    response = api.post("/api/tasks/", {"name": "sneaky", "job": "send_report", "schedule_type": "INTERVAL",
                                        "interval_seconds": 60,
                                        "args": {"recipient": "ops@example.com", "context": {"attempt": 9}}})

    assert response.status_code == 400
    assert response.get_json()["fields"] == {
        "args.context": "is the job's context, which Chime passes to every run; it is not an argument"}


def test_the_admin_s_job_select_offers_the_module_s_job_with_its_argument_fields(client: Any) -> None:
    create_user("admin", "correct horse battery")
    assert sign_in(client, "admin", "correct horse battery").status_code == 302

    html = AdminClient(client).html("/tasks/new")

    assert '<option value="send_report" data-description="Send the weekly report."' in html
    assert 'data-job-args="send_report"' in html
