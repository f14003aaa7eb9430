"""Every Redis key Chime reads or writes, by name: RQ's layout, rq-scheduler's sorted set, and Chime's own.

This module and :mod:`chime.redis_scripts` own the Redis layout: no other module spells a key. A key
with a variable part is a template (``str.format``) with a function that fills it in; a Lua script
never builds a key, it is handed every key it touches in KEYS.

RQ's and rq-scheduler's keys follow their own layout (RQ 2: ``Job.redis_job_namespace_prefix``,
``Queue.redis_queue_namespace_prefix``, ``Queue.redis_queues_keys``, ``StartedJobRegistry.key_template``;
rq-scheduler: ``Scheduler.scheduled_jobs_key``), so RQ's tools and workers read what Chime writes.
"""
from __future__ import annotations

# -- RQ -------------------------------------------------------------------------------------------
QUEUE_NAMES = ("high", "default", "low")  # the queues Chime's workers listen on, most urgent first
ALERTS_QUEUE = "alerts"  # alert deliveries: served by the alerts worker alone, never by the task workers
JOB_KEY = "rq:job:{job_id}"                # hash: one job (its status, payload, origin queue ...)
QUEUE_KEY = "rq:queue:{name}"              # list: job ids waiting on a queue
QUEUES_SET_KEY = "rq:queues"               # set: the keys of every queue that exists
STARTED_REGISTRY_KEY = "rq:wip:{name}"     # sorted set: "<job id>:<execution id>" -> when its heartbeat expires
FINISHED_REGISTRY_KEY = "rq:finished:{name}"  # sorted set: job ids that finished -> when their result expires
FAILED_REGISTRY_KEY = "rq:failed:{name}"      # sorted set: job ids that failed (or were stopped) -> expiry
CANCELED_REGISTRY_KEY = "rq:canceled:{name}"  # sorted set: job ids canceled -> expiry

# -- rq-scheduler ---------------------------------------------------------------------------------
SCHEDULED_KEY = "rq:scheduler:scheduled_jobs"  # sorted set: job id -> due epoch seconds

# -- Chime: occurrences ---------------------------------------------------------------------------
PENDING_KEY = "chime:pending"                   # hash: task id -> job id of its one pending occurrence
INFLIGHT_KEY = "chime:inflight:{task_id}"       # sorted set: job ids moved onto a queue, not yet finished
WAKEUP_KEY = "chime:scheduler:wakeup"           # list: pushed when a task changes; the scheduler blocks on it
ALIVE_KEY = "chime:execution:{execution_id}:alive"  # string with a TTL: a running execution's heartbeat
STOP_KEY = "chime:execution:{execution_id}:stop"    # string with a TTL: an operator asked the run to stop (actor)

# -- Chime: the engine ----------------------------------------------------------------------------
SCHEDULER_LOCK_KEY = "chime:scheduler:lock"          # the dispatching scheduler's lock
SCHEDULER_HEARTBEAT_KEY = "chime:scheduler:heartbeat"  # hash: scheduler name -> its last beat (JSON)
PERIODIC_KEY = "chime:scheduler:periodic"            # hash: periodic job name -> epoch seconds of its last slot
RECONCILER_LOCK_KEY = "chime:reconciler:lock"        # one reconcile pass at a time
RECONCILE_REPORT_KEY = "chime:reconciler:last_report"  # string: the last pass's report (JSON)
LIVENESS_SINCE_KEY = "chime:liveness:since"          # "<run id>@<epoch seconds>": since when Redis kept its data

# -- Chime: metrics and the web -------------------------------------------------------------------
EXECUTIONS_METRIC_KEY = "chime:metrics:executions_by_status"  # hash: status -> count
TASK_EXECUTIONS_METRIC_KEY = "chime:metrics:executions"   # hash: "<task_id>|<status>" -> count (CHIME_METRICS_PER_TASK)
REPAIRS_METRIC_KEY = "chime:metrics:reconcile_repairs"    # hash: repair kind -> count
HISTOGRAM_METRIC_KEY = "chime:metrics:histogram:{name}"   # hash: "le:<bound>" | "sum" | "count"
THROTTLE_KEY_PREFIX = "chime:throttle"                    # Flask-Limiter's counters of failed sign-ins
LIVE_CHANNEL = "chime:live:{db}"  # pub/sub: "something changed" events for the admin's live stream (chime.live);
# per database number, as channels are server-wide while keys are not

# Job ids rq-scheduler's `repeat` kept in SCHEDULED_KEY for the periodic jobs before Chime's dispatcher
# scheduled them itself; the dispatcher removes them (an upgraded engine must not run both).
LEGACY_PERIODIC_JOB_IDS = ("chime-reconcile", "chime-prune-logs")


def _prefix(template: str) -> str:
    """The fixed part of a template whose one field ends it ("rq:job:{job_id}" -> "rq:job:")."""
    prefix, _, field = template.partition("{")
    if not field.endswith("}") or "{" in field:
        raise ValueError(f"{template!r} does not end in its only field")
    return prefix


# Filled in by concatenation: the dispatcher builds thousands of these per pass.
_JOB_PREFIX, _QUEUE_PREFIX, _INFLIGHT_PREFIX = _prefix(JOB_KEY), _prefix(QUEUE_KEY), _prefix(INFLIGHT_KEY)


def job_key(job_id: str) -> str:
    return _JOB_PREFIX + job_id


def queue_key(name: str) -> str:
    return _QUEUE_PREFIX + name


def started_registry_key(queue: str) -> str:
    return STARTED_REGISTRY_KEY.format(name=queue)


def ended_registry_keys(queue: str) -> tuple[str, str, str]:
    """The registries RQ keeps a queue's ended jobs in: finished, failed (and stopped), canceled."""
    return (FINISHED_REGISTRY_KEY.format(name=queue), FAILED_REGISTRY_KEY.format(name=queue),
            CANCELED_REGISTRY_KEY.format(name=queue))


def inflight_key(task_id: int | str) -> str:
    return f"{_INFLIGHT_PREFIX}{task_id}"


def alive_key(execution_id: int) -> str:
    return ALIVE_KEY.format(execution_id=execution_id)


def stop_key(execution_id: int) -> str:
    return STOP_KEY.format(execution_id=execution_id)


def canceled_registry_key(queue: str) -> str:
    return CANCELED_REGISTRY_KEY.format(name=queue)


def live_channel(db: int) -> str:
    return LIVE_CHANNEL.format(db=db)


def histogram_metric_key(name: str) -> str:
    return HISTOGRAM_METRIC_KEY.format(name=name)
