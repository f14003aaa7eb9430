"""POST /api/reconcile/ queues a pass for a worker and answers 202 with where to read its report."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry

import scheduler.reconcile_request as reconcile_request
from scheduler import periodic
from tests.conftest import AUTH
from tests.engine.inprocess.engine import start_without_finishing
from tests.scheduler.conftest import connection, work  # noqa: F401  (the in-process worker fixtures)

# Commands that read Redis and change nothing in it
READS = frozenset({"GET", "MGET", "EXISTS", "TYPE", "TTL", "PTTL", "HGET", "HMGET", "HGETALL", "HEXISTS", "HLEN",
                   "LLEN", "LRANGE", "LINDEX", "LPOS", "SMEMBERS", "SISMEMBER", "SCARD", "ZSCORE", "ZCARD", "ZRANGE",
                   "ZRANGEBYSCORE", "ZRANK", "XRANGE", "XREVRANGE", "XLEN", "INFO", "PING", "SCRIPT"})

REPORT_COUNTS = {"tasks_checked", "pending_restored", "missed_restored", "one_time_recovered", "stale_replaced",
                 "orphans_removed", "executions_lost", "retries_enqueued"}


def queued_on_high(redis_client: Any) -> int:
    return Queue("high", connection=redis_client).count


class PausedBeforeItsFirstChange(redis.Redis):
    """A client of the same Redis that, just before its first command that changes anything, lets
    `meanwhile` run: what another request does between this one's look and this one's change."""

    def __init__(self, connection: Any, meanwhile: Any) -> None:
        super().__init__(connection_pool=connection.connection_pool)
        self.meanwhile = meanwhile

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.meanwhile is not None and str(args[0]).split()[0].upper() not in READS:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return super().execute_command(*args, **options)


def requested_job(redis_client: Any) -> Job:
    return Job.fetch(reconcile_request.REQUEST_JOB_ID, connection=redis_client,
                     serializer=reconcile_request.PlainPickleSerializer)


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
    assert first["id"] not in FinishedJobRegistry("high", connection=redis_client)  # queued now, not finished


@pytest.mark.parametrize("meanwhile", ["queued", "running"])
def test_two_requests_at_once_after_a_pass_ended_leave_one_pass_and_never_drop_the_one_the_other_queued(
        api: Any, redis_client: Any, work: Any, meanwhile: str) -> None:
    api.post("/api/reconcile/")
    work()  # the pass requested earlier has ended: both requests below find it ended
    other: dict[str, Any] = {}

    def the_other_request() -> None:  # runs fully between the first request's look and its first change
        other["answer"] = api.post("/api/reconcile/").get_json()
        if meanwhile == "running":
            start_without_finishing(redis_client, "high")  # a worker took the pass the other request queued
        other["created_at"] = requested_job(redis_client).created_at

    answer = reconcile_request.request_pass(PausedBeforeItsFirstChange(redis_client, the_other_request))

    job = requested_job(redis_client)
    assert other["answer"]["status"] == "queued"
    assert job.created_at == other["created_at"]  # the other request's pass: not dropped and queued again
    assert job.get_status() == ("started" if meanwhile == "running" else "queued")
    assert (answer.id, answer.status) == (other["answer"]["id"], meanwhile)
    assert queued_on_high(redis_client) == (0 if meanwhile == "running" else 1)  # one pass, not two


def test_a_requested_pass_is_the_periodic_reconcile_job_named_in_one_place(api: Any, app: Any,
                                                                          redis_client: Any) -> None:
    [reconcile] = [job for job in periodic.periodic_jobs(app.config) if job.name == "reconcile"]
    api.post("/api/reconcile/")

    job = requested_job(redis_client)
    assert (job.func_name, job.origin, job.timeout) == (reconcile.func, reconcile.queue, reconcile.timeout_seconds)
    source = ast.parse(Path(reconcile_request.__file__).read_text())
    literals = {node.value for node in ast.walk(source) if isinstance(node, ast.Constant)}
    assert literals.isdisjoint({reconcile.func, reconcile.queue})  # taken from scheduler.periodic, not repeated


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
    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(reconcile_request.Job, "fetch", unreachable)
    for response in (api.post("/api/reconcile/"), api.get("/api/reconcile/chime-reconcile-requested/")):
        assert response.status_code == 503 and response.get_json()["error"] == "service_unavailable"
