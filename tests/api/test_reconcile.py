"""POST /api/reconcile/ queues a pass for a worker and answers 202 with where to read its report."""
from __future__ import annotations

from typing import Any

from rq import Queue

from tests.conftest import AUTH
from tests.scheduler.conftest import connection, work  # noqa: F401  (the in-process worker fixtures)

REPORT_COUNTS = {"tasks_checked", "pending_restored", "missed_restored", "one_time_recovered", "stale_replaced",
                 "orphans_removed", "executions_lost", "retries_enqueued"}


def queued_on_high(redis_client: Any) -> int:
    return Queue("high", connection=redis_client).count


def test_a_request_is_a_202_with_the_location_of_its_report(api: Any, redis_client: Any) -> None:
    response = api.post("/api/reconcile/")
    assert response.status_code == 202
    body = response.get_json()
    assert response.headers["Location"] == body["location"] == f"/api/reconcile/{body['id']}/"
    assert (body["status"], body["report"], body["error"]) == ("queued", None, None)
    assert queued_on_high(redis_client) == 1


def test_the_report_is_readable_once_a_worker_has_run_the_pass(api: Any, work: Any) -> None:
    api.post("/api/tasks/", json={"name": "ticker", "job": "noop", "schedule_type": "INTERVAL",
                                  "interval_seconds": 60})
    location = api.post("/api/reconcile/").headers["Location"]
    assert api.get(location).get_json()["status"] == "queued"
    work()
    answer = api.get(location)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "finished" and body["error"] is None
    assert set(body["report"]) >= REPORT_COUNTS | {"started_at", "finished_at", "duration_ms"}
    assert body["report"]["tasks_checked"] == 1


def test_an_empty_database_gives_an_empty_report_and_the_stats_show_it(api: Any, work: Any) -> None:
    location = api.post("/api/reconcile/").headers["Location"]
    work()
    report = api.get(location).get_json()["report"]
    assert report["tasks_checked"] == 0 and "finished_at" in report
    assert api.get("/api/stats/").get_json()["reconciler"]["last_report"]["finished_at"] == report["finished_at"]


def test_repeated_requests_while_one_is_queued_do_not_pile_up(api: Any, redis_client: Any, work: Any) -> None:
    first = api.post("/api/reconcile/").get_json()
    second = api.post("/api/reconcile/").get_json()
    assert second["id"] == first["id"] and second["status"] == "queued"
    assert queued_on_high(redis_client) == 1
    work()
    third = api.post("/api/reconcile/")
    assert third.status_code == 202 and third.get_json()["status"] == "queued"  # the ended pass gave way
    assert queued_on_high(redis_client) == 1


def test_a_pass_that_finds_another_running_reports_that_it_skipped(api: Any, redis_client: Any, work: Any) -> None:
    from chime.redis_keys import RECONCILER_LOCK_KEY

    redis_client.set(RECONCILER_LOCK_KEY, "someone-else", ex=60)
    location = api.post("/api/reconcile/").headers["Location"]
    work()
    body = api.get(location).get_json()
    assert body["status"] == "finished" and body["report"]["skipped"] is True and body["report"]["reason"]


def test_an_unknown_pass_is_a_404_and_both_routes_need_the_token(api: Any, client: Any) -> None:
    assert api.get("/api/reconcile/chime-reconcile-requested/").status_code == 404  # nothing requested yet
    assert api.get("/api/reconcile/someone-elses-job/").status_code == 404
    location = api.post("/api/reconcile/").headers["Location"]
    assert client.post("/api/reconcile/").status_code == 401
    assert client.get(location).status_code == 401
    assert client.get(location, headers=AUTH).status_code == 200


def test_with_redis_down_a_request_is_a_503(api: Any, monkeypatch: Any) -> None:
    import redis

    import scheduler.reconcile_request as reconcile_request

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(reconcile_request.Job, "fetch", unreachable)
    for response in (api.post("/api/reconcile/"), api.get("/api/reconcile/chime-reconcile-requested/")):
        assert response.status_code == 503 and response.get_json()["error"] == "service_unavailable"
