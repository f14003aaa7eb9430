"""Engine metrics kept in Redis (so every worker on every machine adds to the same numbers),
and a Prometheus collector that reads them, plus live gauges, at scrape time.

Counters reset when Redis loses its data; Prometheus' rate() handles resets.

Every label has a bounded set of values (statuses, queues, repair kinds, buckets): executions are
counted by status. Counting them per task as well -- a `task_id` label, one series per task and
status, growing with the number of tasks -- is an explicit opt-in: CHIME_METRICS_PER_TASK=1
(the app's METRICS_PER_TASK), read by the processes that count and by the one that is scraped.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from flask import current_app, has_app_context
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis import Redis

from chime.redis_keys import EXECUTIONS_METRIC_KEY as EXECUTIONS_KEY
from chime.redis_keys import TASK_EXECUTIONS_METRIC_KEY as TASK_EXECUTIONS_KEY
from chime.redis_keys import histogram_metric_key
from chime.redis_keys import REPAIRS_METRIC_KEY as REPAIRS_KEY
from chime.enums import Status
from scheduler import health

DURATION_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
LAG_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def bucket_bound(value: float, buckets: Sequence[float]) -> str:
    """Return the label of the smallest bucket holding `value` ('+Inf' past the last)."""
    for bound in buckets:
        if value <= bound:
            return repr(float(bound))
    return "+Inf"


def counts_per_task() -> bool:
    """Whether executions are counted per task too (CHIME_METRICS_PER_TASK; off by default)."""
    return has_app_context() and bool(current_app.config.get("METRICS_PER_TASK"))


def record_execution(connection: Redis, *, task_id: int, status: str, duration_seconds: float | None,
                     lag_seconds: float | None, per_task: bool | None = None) -> None:
    """Count one finished execution (per task too when `per_task`, by default the app's setting)
    and observe its duration and dispatch lag."""
    with connection.pipeline(transaction=False) as pipe:
        add_execution(pipe, task_id=task_id, status=status, duration_seconds=duration_seconds,
                      lag_seconds=lag_seconds, per_task=per_task)
        pipe.execute()


def add_execution(pipe: object, *, task_id: int, status: str, duration_seconds: float | None,
                  lag_seconds: float | None, per_task: bool | None = None) -> None:
    """Queue `record_execution`'s commands on the caller's pipeline (the executor sends them with the other
    Redis work of a run's end, in one round trip)."""
    _count(pipe, status, [task_id], counts_per_task() if per_task is None else per_task)
    if duration_seconds is not None:
        _observe(pipe, "duration", duration_seconds, DURATION_BUCKETS_SECONDS)
    if lag_seconds is not None:
        _observe(pipe, "dispatch_lag", max(lag_seconds, 0.0), LAG_BUCKETS_SECONDS)


def record_skipped(connection: Redis, task_ids: Sequence[int], per_task: bool | None = None) -> None:
    """Count occurrences the scheduler recorded SKIPPED (missed, overlapping): they never reach a worker."""
    if not task_ids:
        return
    with connection.pipeline(transaction=False) as pipe:
        _count(pipe, Status.SKIPPED.value, task_ids, counts_per_task() if per_task is None else per_task)
        pipe.execute()


def _count(pipe: object, status: str, task_ids: Sequence[int], per_task: bool) -> None:
    pipe.hincrby(EXECUTIONS_KEY, status, len(task_ids))  # type: ignore[attr-defined]
    for task_id in task_ids if per_task else ():
        pipe.hincrby(TASK_EXECUTIONS_KEY, f"{task_id}|{status}", 1)  # type: ignore[attr-defined]


def _observe(pipe: object, name: str, value: float, buckets: Sequence[float]) -> None:
    key = histogram_metric_key(name)
    pipe.hincrby(key, "le:" + bucket_bound(value, buckets), 1)  # type: ignore[attr-defined]
    pipe.hincrbyfloat(key, "sum", value)  # type: ignore[attr-defined]
    pipe.hincrby(key, "count", 1)  # type: ignore[attr-defined]


def record_repairs(connection: Redis, report: dict[str, object]) -> None:
    """Add a reconcile report's repair counts to the running totals."""
    counts = {k: v for k, v in report.items() if isinstance(v, int) and k not in ("tasks_checked", "duration_ms")}
    if counts:
        with connection.pipeline(transaction=False) as pipe:
            for kind, value in counts.items():
                pipe.hincrby(REPAIRS_KEY, kind, value)
            pipe.execute()


class EngineCollector:
    """A prometheus_client collector reading the engine's state from Redis at scrape time."""

    def __init__(self, connection: Redis, *, per_task: bool = False) -> None:
        self.connection = connection
        self.per_task = per_task

    def collect(self) -> Iterator[object]:
        yield self._executions()
        yield self._histogram("chime_execution_duration_seconds", "Execution duration.", "duration",
                              DURATION_BUCKETS_SECONDS)
        yield self._histogram("chime_dispatch_lag_seconds", "Worker start minus scheduled time.", "dispatch_lag",
                              LAG_BUCKETS_SECONDS)
        yield from self._gauges()
        yield self._repairs()

    def _executions(self) -> CounterMetricFamily:
        """Finished executions by status; by task and status only when counting per task is opted into."""
        if not self.per_task:
            family = CounterMetricFamily("chime_executions", "Finished executions by status.", labels=["status"])
            for status, value in sorted(self.connection.hgetall(EXECUTIONS_KEY).items()):
                family.add_metric([status.decode()], int(value))
            return family
        family = CounterMetricFamily("chime_executions", "Finished executions by task and status.",
                                     labels=["task_id", "status"])
        for field, value in sorted(self.connection.hgetall(TASK_EXECUTIONS_KEY).items()):
            task_id, _, status = field.decode().partition("|")
            family.add_metric([task_id, status], int(value))
        return family

    def _histogram(self, metric: str, documentation: str, name: str,
                   buckets: Sequence[float]) -> HistogramMetricFamily:
        raw = {k.decode(): float(v) for k, v in self.connection.hgetall(histogram_metric_key(name)).items()}
        cumulative, running = [], 0.0
        for label in [repr(float(b)) for b in buckets] + ["+Inf"]:
            running += raw.get("le:" + label, 0.0)
            cumulative.append((label, running))
        family = HistogramMetricFamily(metric, documentation)
        family.add_metric([], cumulative, sum_value=raw.get("sum", 0.0))
        return family

    def _gauges(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("chime_queue_depth", "Jobs waiting on each queue.", labels=["queue"])
        for name, count in health.queue_depths(self.connection).items():
            depth.add_metric([name], count)
        yield depth
        yield GaugeMetricFamily("chime_workers_alive", "RQ workers registered in Redis.",
                                value=len(health.worker_names(self.connection)))
        state = health.scheduler_state(self.connection, now_epoch=time.time())
        age = time.time() - state["last_heartbeat"] if state["last_heartbeat"] else float("nan")
        yield GaugeMetricFamily("chime_scheduler_heartbeat_age_seconds", "Seconds since a scheduler last beat.",
                                value=age)
        yield GaugeMetricFamily("chime_scheduler_alive", "1 when the scheduler holding the lock beat within 15 s.",
                                value=1 if state["alive"] else 0)

    def _repairs(self) -> CounterMetricFamily:
        family = CounterMetricFamily("chime_reconcile_repairs", "Repairs made by the reconciler, by kind.",
                                     labels=["kind"])
        for kind, value in sorted(self.connection.hgetall(REPAIRS_KEY).items()):
            family.add_metric([kind.decode()], int(value))
        return family
