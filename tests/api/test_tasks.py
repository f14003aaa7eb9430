"""The task routes of the JSON API, on SQLite and Postgres."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from chime import occurrence as occ

INTERVAL_TASK = {"name": "ping", "job": "echo", "args": {"message": "hi"},
                 "schedule_type": "INTERVAL", "interval_seconds": 60}


def make_task(api: Any, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/tasks/", {**INTERVAL_TASK, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_interval_task_returns_it_with_defaults(api: Any) -> None:
    task = make_task(api)
    assert task["id"] > 0
    assert task["status"] == "PENDING"
    assert task["enabled"] is True
    assert task["max_retries"] == 3
    assert task["retry_backoff_seconds"] == 60
    assert task["timeout_seconds"] == 300
    assert task["overlap"] == "SKIP"
    assert task["misfire_grace_seconds"] == 300
    assert task["queue"] == "default"
    assert task["notify"] == "ALWAYS"
    assert task["timezone"] == "UTC"
    assert task["depends_on"] == []
    assert task["next_run_at"].endswith("+00:00")
    assert task["created_at"].endswith("+00:00")


def test_created_task_has_exactly_one_pending_occurrence(api: Any, redis_client: Any) -> None:
    task = make_task(api)
    job_id = occ.pending_job_id(redis_client, task["id"])
    assert job_id is not None
    assert redis_client.zscore(occ.SCHEDULED_KEY, job_id) is not None
    assert redis_client.zcard(occ.SCHEDULED_KEY) == 1


def test_one_time_task_naive_run_at_is_read_in_its_timezone(api: Any) -> None:
    task = make_task(api, schedule_type="ONE_TIME", interval_seconds=None,
                     run_at="2031-06-01T09:00:00", timezone="Europe/Berlin")
    assert task["run_at"] == "2031-06-01T07:00:00+00:00"
    assert task["next_run_at"] == "2031-06-01T07:00:00+00:00"


def test_cron_task_next_run_follows_expression(api: Any) -> None:
    task = make_task(api, schedule_type="CRON", interval_seconds=None, cron="0 9 * * *")
    next_run = datetime.fromisoformat(task["next_run_at"])
    assert (next_run.hour, next_run.minute) == (9, 0)


def test_get_task_and_trailing_slash_is_optional(api: Any) -> None:
    task = make_task(api)
    assert api.get(f"/api/tasks/{task['id']}/").get_json() == task
    assert api.get(f"/api/tasks/{task['id']}").get_json() == task
    assert api.get("/api/tasks").status_code == 200


def test_list_tasks_paginates_and_filters(api: Any) -> None:
    for n in range(5):
        make_task(api, name=f"task-{n}", enabled=n % 2 == 0)
    page = api.get("/api/tasks/?limit=2").get_json()
    assert page["count"] == 5 and len(page["results"]) == 2
    assert page["previous"] is None and "offset=2" in page["next"]
    last = api.get("/api/tasks/?limit=2&offset=4").get_json()
    assert last["next"] is None and len(last["results"]) == 1
    assert api.get("/api/tasks/?enabled=false").get_json()["count"] == 2
    assert api.get("/api/tasks/?search=task-3").get_json()["count"] == 1
    assert api.get("/api/tasks/?schedule_type=CRON").get_json()["count"] == 0
    assert api.get("/api/tasks/?status=PENDING").get_json()["count"] == 5


def test_search_treats_percent_and_underscore_literally(api: Any) -> None:
    make_task(api, name="a_b")
    make_task(api, name="axb")
    assert [t["name"] for t in api.get("/api/tasks/?search=a_b").get_json()["results"]] == ["a_b"]
    assert api.get("/api/tasks/?search=%25").get_json()["count"] == 0


def test_put_replaces_every_field_and_resets_omitted_ones(api: Any) -> None:
    task = make_task(api, max_retries=7, description="old")
    body = {"name": "ping2", "job": "noop", "schedule_type": "CRON", "cron": "*/5 * * * *"}
    updated = api.put(f"/api/tasks/{task['id']}/", body).get_json()
    assert updated["name"] == "ping2" and updated["job"] == "noop" and updated["args"] == {}
    assert updated["max_retries"] == 3 and updated["description"] == ""
    assert updated["interval_seconds"] is None and updated["cron"] == "*/5 * * * *"


def test_put_accepts_the_body_it_returned(api: Any) -> None:
    task = make_task(api)
    response = api.put(f"/api/tasks/{task['id']}/", task)
    assert response.status_code == 200, response.get_json()


def test_patch_changes_only_given_fields_and_replaces_pending_occurrence(api: Any, redis_client: Any) -> None:
    task = make_task(api)
    before = occ.pending_job_id(redis_client, task["id"])
    updated = api.patch(f"/api/tasks/{task['id']}/", {"interval_seconds": 3600}).get_json()
    assert updated["interval_seconds"] == 3600 and updated["name"] == "ping"
    after = occ.pending_job_id(redis_client, task["id"])
    assert after != before
    assert redis_client.zcard(occ.SCHEDULED_KEY) == 1
    assert not redis_client.exists(occ.JOB_KEY.format(job_id=before))


def test_patch_switching_schedule_type_drops_the_old_type_fields(api: Any) -> None:
    task = make_task(api)
    updated = api.patch(f"/api/tasks/{task['id']}/", {"schedule_type": "CRON", "cron": "@daily"}).get_json()
    assert updated["schedule_type"] == "CRON" and updated["interval_seconds"] is None


def test_delete_removes_task_and_its_occurrence(api: Any, redis_client: Any) -> None:
    task = make_task(api)
    assert api.delete(f"/api/tasks/{task['id']}/").status_code == 204
    assert api.get(f"/api/tasks/{task['id']}/").status_code == 404
    assert redis_client.zcard(occ.SCHEDULED_KEY) == 0
    assert occ.pending_job_id(redis_client, task["id"]) is None


def test_deleting_a_parent_is_refused_naming_its_dependents(api: Any) -> None:
    parent = make_task(api, name="parent")
    make_task(api, name="child", depends_on=[parent["id"]])
    response = api.delete(f"/api/tasks/{parent['id']}/")
    assert response.status_code == 409
    assert response.get_json()["error"] == "conflict"
    assert "'child'" in response.get_json()["message"]
    assert api.get(f"/api/tasks/{parent['id']}/").status_code == 200


def test_toggle_flips_enabled_and_removes_then_restores_occurrence(api: Any, redis_client: Any) -> None:
    task = make_task(api)
    off = api.post(f"/api/tasks/{task['id']}/toggle/").get_json()
    assert off["enabled"] is False and off["next_run_at"] is None
    assert redis_client.zcard(occ.SCHEDULED_KEY) == 0
    on = api.post(f"/api/tasks/{task['id']}/toggle/").get_json()
    assert on["enabled"] is True and on["next_run_at"] is not None
    assert redis_client.zcard(occ.SCHEDULED_KEY) == 1


def test_run_now_queues_a_manual_job_even_when_disabled(api: Any, redis_client: Any) -> None:
    task = make_task(api, enabled=False)
    response = api.post(f"/api/tasks/{task['id']}/run/")
    assert response.status_code == 202
    body = response.get_json()
    assert body["trigger"] == "MANUAL" and body["job_id"].startswith(f"chime-{task['id']}-")
    assert redis_client.lrange("rq:queue:default", 0, -1) == [body["job_id"].encode()]


def test_dependencies_are_stored_and_shown(api: Any) -> None:
    a = make_task(api, name="a")
    b = make_task(api, name="b")
    child = make_task(api, name="c", depends_on=[b["id"], a["id"], a["id"]])
    assert child["depends_on"] == sorted([a["id"], b["id"]])


def test_dependency_cycle_is_rejected(api: Any) -> None:
    a = make_task(api, name="a")
    b = make_task(api, name="b", depends_on=[a["id"]])
    response = api.patch(f"/api/tasks/{a['id']}/", {"depends_on": [b["id"]]})
    assert response.status_code == 400
    assert response.get_json()["fields"]["depends_on"] == "this would create a dependency cycle"
    assert api.get(f"/api/tasks/{a['id']}/").get_json()["depends_on"] == []


def test_task_cannot_depend_on_itself(api: Any) -> None:
    a = make_task(api, name="a")
    response = api.patch(f"/api/tasks/{a['id']}/", {"depends_on": [a["id"]]})
    assert response.status_code == 400
    assert "itself" in response.get_json()["fields"]["depends_on"]


def test_past_one_time_task_is_due_at_once(api: Any, redis_client: Any) -> None:
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    task = make_task(api, schedule_type="ONE_TIME", interval_seconds=None, run_at=past)
    job_id = occ.pending_job_id(redis_client, task["id"])
    assert redis_client.zscore(occ.SCHEDULED_KEY, job_id) <= datetime.now(timezone.utc).timestamp()


@pytest.mark.parametrize("path", ["/api/tasks/999/", "/api/tasks/999/toggle/", "/api/tasks/999/run/"],
                         ids=["get", "toggle", "run"])
def test_missing_task_is_a_json_404(api: Any, path: str) -> None:
    method = api.get if path.count("/") == 4 else api.post
    response = method(path)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_search_finds_a_task_by_its_name_or_its_job_like_the_admin_and_lists_by_id(api: Any) -> None:
    zeta = make_task(api, name="zeta", job="echo", args={"message": "hi"})
    alpha = make_task(api, name="alpha", job="noop", args={})
    echoer = make_task(api, name="Echo-ish", job="noop", args={})
    by_search = api.get("/api/tasks/?search=ECHO").get_json()["results"]
    assert [task["id"] for task in by_search] == [zeta["id"], echoer["id"]]  # the job matches too; ids in order
    assert [task["id"] for task in api.get("/api/tasks/").get_json()["results"]] == [zeta["id"], alpha["id"],
                                                                                    echoer["id"]]
    assert api.get("/api/tasks/?search=%20%20noop%20").get_json()["count"] == 2  # surrounding space is dropped


def test_search_ignores_the_case_of_letters_in_the_search_and_in_the_name(api: Any) -> None:
    report = make_task(api, name="NightlyReport")
    weekly = make_task(api, name="weekly-sync")
    assert [t["id"] for t in api.get("/api/tasks/?search=nightlyREPORT").get_json()["results"]] == [report["id"]]
    assert [t["id"] for t in api.get("/api/tasks/?search=WEEKLY-S").get_json()["results"]] == [weekly["id"]]
    assert api.get("/api/tasks/?search=nightly-report").get_json()["count"] == 0
