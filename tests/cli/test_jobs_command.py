"""`flask --app wsgi jobs`: the jobs tasks can run, built-in and your own, with their parameters."""
from __future__ import annotations

import json
from typing import Any


def test_jobs_lists_every_job_with_its_parameters(app: Any) -> None:
    result = app.test_cli_runner().invoke(args=["jobs"])

    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == ["JOB", "PARAMETERS", "DESCRIPTION"]
    echo = next(row for row in rows if row.startswith("echo "))
    assert "message: string" in echo
    sleep = next(row for row in rows if row.startswith("sleep "))
    assert "seconds: number" in sleep


def test_jobs_json_is_what_the_api_lists(app: Any, client: Any) -> None:
    result = app.test_cli_runner().invoke(args=["jobs", "--json"])

    assert result.exit_code == 0, result.output
    listed = client.get("/api/jobs/", headers={"Authorization": "Bearer test-token-123"}).get_json()
    assert json.loads(result.output) == listed
