"""GET /metrics: the Prometheus text format, behind the API token."""
from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from scheduler import metrics
from chime.redis_keys import TASK_EXECUTIONS_METRIC_KEY
from tests.conftest import AUTH, app_on


def scrape(client: Any) -> dict[str, Any]:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.get_data(as_text=True))}


def samples(family: Any, name: str) -> dict[tuple, float]:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == name}


def test_metrics_need_the_api_token(client: Any) -> None:
    assert client.get("/metrics").status_code == 401


def record_three_executions(redis_client: Any) -> None:
    metrics.record_execution(redis_client, task_id=7, status="SUCCESS", duration_seconds=0.2, lag_seconds=0.03)
    metrics.record_execution(redis_client, task_id=7, status="SUCCESS", duration_seconds=3, lag_seconds=None)
    metrics.record_execution(redis_client, task_id=8, status="FAILED", duration_seconds=0.01, lag_seconds=0.2)


def test_metrics_count_executions_by_status_with_no_label_per_task(client: Any, redis_client: Any) -> None:
    record_three_executions(redis_client)
    metrics.record_skipped(redis_client, [7, 8, 9])
    families = scrape(client)
    counted = samples(families["chime_executions"], "chime_executions_total")
    assert counted == {(("status", "SUCCESS"),): 2, (("status", "FAILED"),): 1, (("status", "SKIPPED"),): 3}
    assert redis_client.exists(TASK_EXECUTIONS_METRIC_KEY) == 0  # nothing is kept per task either


def test_counting_per_task_is_an_explicit_opt_in(redis_url: str, database_url: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("CHIME_METRICS_PER_TASK", "1")
    with app_on(database_url, redis_url) as app:
        assert app.config["METRICS_PER_TASK"] is True
        redis_client = app.extensions["redis"]
        record_three_executions(redis_client)
        counted = samples(scrape(app.test_client())["chime_executions"], "chime_executions_total")
    assert counted[(("status", "SUCCESS"), ("task_id", "7"))] == 2
    assert counted[(("status", "FAILED"), ("task_id", "8"))] == 1


def test_metrics_histograms_observe_durations_and_dispatch_lag(client: Any, redis_client: Any) -> None:
    record_three_executions(redis_client)
    families = scrape(client)
    duration = families["chime_execution_duration_seconds"]
    assert samples(duration, "chime_execution_duration_seconds_count")[()] == 3
    assert samples(duration, "chime_execution_duration_seconds_bucket")[(("le", "0.25"),)] == 2
    assert samples(duration, "chime_execution_duration_seconds_bucket")[(("le", "+Inf"),)] == 3
    assert samples(families["chime_dispatch_lag_seconds"], "chime_dispatch_lag_seconds_count")[()] == 2


def test_metrics_show_queue_depth_workers_scheduler_and_repairs(client: Any, redis_client: Any) -> None:
    redis_client.rpush("rq:queue:high", "a", "b")
    metrics.record_repairs(redis_client, {"pending_restored": 3, "tasks_checked": 10, "orphans_removed": 0})
    families = scrape(client)
    assert samples(families["chime_queue_depth"], "chime_queue_depth")[(("queue", "high"),)] == 2
    assert samples(families["chime_workers_alive"], "chime_workers_alive")[()] == 0
    assert samples(families["chime_scheduler_alive"], "chime_scheduler_alive")[()] == 0
    repairs = samples(families["chime_reconcile_repairs"], "chime_reconcile_repairs_total")
    assert repairs[(("kind", "pending_restored"),)] == 3 and (("kind", "tasks_checked"),) not in repairs
