"""Bad requests get a clear JSON error and change nothing."""
from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_tasks import INTERVAL_TASK, make_task

BAD_TASKS = [
    ({"cron": "61 * * * *", "schedule_type": "CRON", "interval_seconds": None}, "cron"),
    ({"cron": "* * * * * *", "schedule_type": "CRON", "interval_seconds": None}, "cron"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"schedule_type": "ONE_TIME", "interval_seconds": None}, "run_at"),
    ({"schedule_type": "CRON", "interval_seconds": None}, "cron"),
    ({"run_at": "2030-01-01T00:00:00Z"}, "run_at"),
    ({"interval_seconds": 0}, "interval_seconds"),
    ({"interval_seconds": "60"}, "interval_seconds"),
    ({"interval_seconds": True}, "interval_seconds"),
    ({"args": {"message": 5}}, "args.message"),
    ({"args": {"message": "x", "extra": 1}}, "args.extra"),
    ({"args": {}}, "args.message"),
    ({"args": "text"}, "args"),
    ({"job": "nope"}, "job"),
    ({"job": None}, "job"),
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": None}, "name"),
    ({"depends_on": [12345]}, "depends_on"),
    ({"depends_on": "1"}, "depends_on"),
    ({"schedule_type": "WEEKLY"}, "schedule_type"),
    ({"queue": "urgent"}, "queue"),
    ({"notify": "SOMETIMES"}, "notify"),
    ({"overlap": "QUEUE"}, "overlap"),
    ({"enabled": "yes"}, "enabled"),
    ({"max_retries": -1}, "max_retries"),
    ({"start_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"}, "end_at"),
    ({"start_at": "not a date"}, "start_at"),
    ({"colour": "blue"}, "colour"),
    ({"job": "shell", "args": {"command": "true"}}, "job"),
    ({"args": {"message": "a\x00b"}}, "args.message"),
    ({"args": {"message": "lone \ud800 surrogate"}}, "args.message"),
    ({"args": {"message": "x", "\x00": 1}}, "args"),
    ({"args": {"message": "x", "\udfff": 1}}, "args"),
    ({"job": "http_request", "args": {"url": "https://example.com/", "json": {"k\x00": 1}}}, "args.json"),
    ({"job": "http_request", "args": {"url": "https://example.com/", "json": [["\udc80"]]}}, "args.json"),
    ({"description": "\ud83d alone"}, "description"),
    ({"name": "nul\x00"}, "name"),
    ({"timezone": "Europe/Berlin\x00"}, "timezone"),
    ({"timezone": "\ud800"}, "timezone"),
    ({"cron": "0 9 * * *\x00", "schedule_type": "CRON", "interval_seconds": None}, "cron"),
    ({"cron": "0 9 * * \ud800", "schedule_type": "CRON", "interval_seconds": None}, "cron"),
    ({"job": "echo\x00"}, "job"),
    ({"queue": "default\x00"}, "queue"),
]


@pytest.mark.parametrize("change,field", BAD_TASKS, ids=[f for _, f in BAD_TASKS])
def test_invalid_task_is_a_400_naming_the_field_and_stores_nothing(api: Any, change: dict, field: str) -> None:
    response = api.post("/api/tasks/", {**INTERVAL_TASK, **change})
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["error"] == "validation_error"
    assert field in body["fields"], body
    assert body["message"]
    assert api.get("/api/tasks/").get_json()["count"] == 0


def test_unknown_job_error_lists_the_known_jobs(api: Any) -> None:
    body = api.post("/api/tasks/", {**INTERVAL_TASK, "job": "nope"}).get_json()
    assert "echo" in body["fields"]["job"] and "noop" in body["fields"]["job"]


def test_duplicate_name_is_a_409(api: Any) -> None:
    make_task(api)
    response = api.post("/api/tasks/", INTERVAL_TASK)
    assert response.status_code == 409
    assert response.get_json()["error"] == "conflict"
    assert api.get("/api/tasks/").get_json()["count"] == 1


def test_renaming_onto_an_existing_name_is_a_409_and_changes_nothing(api: Any) -> None:
    make_task(api, name="one")
    two = make_task(api, name="two")
    assert api.patch(f"/api/tasks/{two['id']}/", {"name": "one"}).status_code == 409
    assert api.get(f"/api/tasks/{two['id']}/").get_json()["name"] == "two"


def test_invalid_patch_changes_nothing(api: Any) -> None:
    task = make_task(api)
    response = api.patch(f"/api/tasks/{task['id']}/", {"interval_seconds": -5, "name": "new"})
    assert response.status_code == 400
    assert api.get(f"/api/tasks/{task['id']}/").get_json() == task


def test_body_that_is_not_json_is_a_415(api: Any) -> None:
    response = api.client.post("/api/tasks/", data="name=x", headers={"Authorization": "Bearer test-token-123",
                                                                       "Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_media_type"


def test_malformed_json_is_a_400(api: Any) -> None:
    response = api.client.post("/api/tasks/", data="{bad", headers={"Authorization": "Bearer test-token-123",
                                                                    "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"body": "is not valid JSON"}


def test_json_that_is_not_an_object_is_a_400(api: Any) -> None:
    response = api.post("/api/tasks/", [1, 2])
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"body": "must be a JSON object"}


def test_body_over_one_mebibyte_is_a_413(api: Any) -> None:
    big = {**INTERVAL_TASK, "description": "x" * (1024 * 1024 + 10)}
    response = api.post("/api/tasks/", big)
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


def test_wrong_method_is_a_json_405(api: Any) -> None:
    response = api.put("/api/tasks/", {})
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_unknown_api_path_is_a_json_404(api: Any) -> None:
    response = api.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=abc", "offset=-1", "enabled=maybe",
                                   "status=DONE", "schedule_type=x"])
def test_bad_list_query_is_a_400(api: Any, query: str) -> None:
    response = api.get(f"/api/tasks/?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "validation_error"


# -- job args: depth, size; request bodies nested too deep -----------------------------------

def nested(depth: int, leaf: Any = 1) -> Any:
    """A value with `depth` arrays around `leaf`."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def http_task(body: Any) -> dict[str, Any]:
    return {**INTERVAL_TASK, "job": "http_request", "args": {"url": "https://example.com/", "json": body}}


def test_an_argument_nested_thirty_two_levels_deep_is_accepted(api: Any) -> None:
    response = api.post("/api/tasks/", http_task(nested(32)))
    assert response.status_code == 201, response.get_json()
    assert api.get(f"/api/tasks/{response.get_json()['id']}/").status_code == 200


@pytest.mark.parametrize("depth", [33, 900])
def test_an_argument_nested_deeper_is_a_400_naming_it_and_stores_nothing(api: Any, depth: int) -> None:
    response = api.post("/api/tasks/", http_task(nested(depth)))
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["fields"] == {"args.json": "must not be nested more than 32 levels deep"}
    assert api.get("/api/tasks/").get_json()["count"] == 0


def test_args_over_sixty_four_kib_are_a_400(api: Any) -> None:
    response = api.post("/api/tasks/", http_task(["x" * 1000] * 70))
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"args": "must be at most 64 KiB as JSON"}
    assert api.get("/api/tasks/").get_json()["count"] == 0


def test_a_patch_bringing_bad_args_changes_nothing(api: Any) -> None:
    task = make_task(api)
    response = api.patch(f"/api/tasks/{task['id']}/", {"args": {"message": "\x00"}})
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"args.message": "must not contain NUL characters"}
    assert api.get(f"/api/tasks/{task['id']}/").get_json() == task


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_a_request_body_nested_ten_thousand_levels_deep_is_a_400(api: Any, opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    response = api.client.post("/api/tasks/", data=opening * 10_000 + "1" + closing * 10_000,
                               headers={"Authorization": "Bearer test-token-123", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"body": "is nested too deeply"}
    assert api.get("/api/tasks/").get_json()["count"] == 0


# -- http_request: what can be known of its URL when the task is saved -------------------------

@pytest.mark.parametrize("url,reason", [
    ("http://127.0.0.1:8080/", "refused: 127.0.0.1 is a loopback address; allow it with CHIME_EGRESS_ALLOW"),
    ("http://0x7f.1/", "refused: 0x7f.1 is 127.0.0.1, a loopback address; allow it with CHIME_EGRESS_ALLOW"),
    ("http://[::ffff:169.254.169.254]/", "refused: ::ffff:169.254.169.254 is a cloud metadata address "
     "(169.254.169.254) inside an IPv6 address; allow it by listing ::ffff:a9fe:a9fe/128 alone in CHIME_EGRESS_ALLOW"),
    ("ftp://example.com/", "must be an http or https URL"),
])
def test_an_http_request_to_a_refused_address_is_a_400_on_its_url(
        api: Any, monkeypatch: pytest.MonkeyPatch, url: str, reason: str) -> None:
    monkeypatch.delenv("CHIME_EGRESS_ALLOW", raising=False)
    response = api.post("/api/tasks/", {**INTERVAL_TASK, "job": "http_request", "args": {"url": url}})
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"args.url": reason}
    assert api.get("/api/tasks/").get_json()["count"] == 0


def test_an_http_request_to_an_allowed_private_address_is_saved(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIME_EGRESS_ALLOW", "127.0.0.0/8")
    response = api.post("/api/tasks/", {**INTERVAL_TASK, "job": "http_request", "args": {"url": "http://127.0.0.1:8080/"}})
    assert response.status_code == 201, response.get_json()
