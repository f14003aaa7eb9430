"""Alert delivery: one Delivery row per (event, channel), sent by RQ jobs on the `alerts` queue, retried
with exponential backoff until its budget is spent, every attempt recorded.

For the pieces that decide *what* to send (rules, the watchdog): call :func:`enqueue_delivery` inside
your unit of work; the row commits with your change and its job is pushed to Redis only after the
commit. The event is a JSON-able dict with at least ``event`` (``failed``, ``recovered``, ...) and
usually ``title``, ``message``, ``task`` ({id, name}), ``task_id``, ``execution_id``, ``occurred_at``.

Nothing is lost: the database row is the truth, Redis only carries the wake-up. An attempt first
*claims* the row (one conditional UPDATE: still pending, the attempt count it expects, due), so a
duplicate job is a no-op, and leases it for :func:`lease_seconds`; the alerts worker's periodic
:func:`sweep` pushes a job for every pending delivery that is due -- a retry whose backoff has passed,
a delivery whose push was lost, or one whose worker was killed mid-attempt (its lease has expired).
The delivery id (X-Chime-Delivery) is the same on every attempt, so a receiver can drop a duplicate.

An attempt has a hard overall deadline (ALERT_ATTEMPT_DEADLINE_SECONDS, 30 s), shorter than its lease,
so the sweep never claims a delivery whose attempt is still sending; and :func:`record` changes the
delivery only if the claim is still the attempt's own (a stale attempt adds its attempt row, nothing
else). A claim also ends what must not go on: a delivery whose retry budget is spent (its workers kept
dying) fails with the ERROR notification, and one to a channel disabled since is not sent. Engine events
(:data:`URGENT_EVENTS`) are queued at the front of the alerts queue.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_app_context
from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select, update

from chime import channel_secrets, senders
from chime.enums import ChannelKind, DeliveryStatus, Level
from chime.database import begin_read_only
from chime.errors import ValidationError
from chime.extensions import db, get_redis
from chime.models import Channel, Delivery, DeliveryAttempt, Notification
from chime.redis_keys import ALERTS_QUEUE
from chime.timeutil import isoformat, utcnow
from chime.unit_of_work import after_commit, unit_of_work

log = logging.getLogger(__name__)

DELIVER_FUNC = "scheduler.alerts.deliver"  # the RQ entry point (scheduler.boundary.ENTRY_POINTS)
DEFAULT_RETRY_FIRST_SECONDS = 30.0  # the first retry waits this long; each next one twice as long
DEFAULT_RETRY_BUDGET_SECONDS = 3600.0  # no attempt is scheduled later than this after the alert was made
DEFAULT_SWEEP_INTERVAL_SECONDS = 5.0  # how often the alerts worker looks for due deliveries
DEFAULT_ATTEMPT_DEADLINE_SECONDS = 30.0  # one attempt, all of it (connect, TLS, every SMTP reply, the body)
MAX_ATTEMPT_DEADLINE_SECONDS = 300.0
LEASE_MARGIN_SECONDS = 60  # an attempt's lease: its deadline plus this
MAX_ERROR_CHARS = 1000
MAX_EVENT_NAME_CHARS = 40
SWEEP_BATCH = 500
JOB_RESULT_TTL_SECONDS = 600
JOB_TIMEOUT_SECONDS = int(MAX_ATTEMPT_DEADLINE_SECONDS) + LEASE_MARGIN_SECONDS  # RQ's last resort, above any deadline
JOB_FAILURE_TTL_SECONDS = 86400
MASK = "********"
TEST_EVENT = "test"
DISABLED_ERROR = "not sent: the channel was disabled after the alert was queued"
URGENT_EVENTS = frozenset({  # the watchdog's: queued at the front, ahead of a backlog of run alerts
    "scheduler_down", "scheduler_up", "no_workers", "workers_back", "missed", "overrun"})

SETTINGS = {  # app config key -> (environment variable, default)
    "ALERT_RETRY_FIRST_SECONDS": ("CHIME_ALERT_RETRY_FIRST_SECONDS", DEFAULT_RETRY_FIRST_SECONDS),
    "ALERT_RETRY_BUDGET_SECONDS": ("CHIME_ALERT_RETRY_BUDGET_SECONDS", DEFAULT_RETRY_BUDGET_SECONDS),
    "ALERT_SWEEP_INTERVAL_SECONDS": ("CHIME_ALERT_SWEEP_INTERVAL_SECONDS", DEFAULT_SWEEP_INTERVAL_SECONDS),
    "ALERT_ATTEMPT_DEADLINE_SECONDS": ("CHIME_ALERT_ATTEMPT_DEADLINE_SECONDS", DEFAULT_ATTEMPT_DEADLINE_SECONDS),
}


def setting(name: str) -> float:
    """One alert setting: the app's config, else the environment, else its default (seconds)."""
    return seconds_setting(SETTINGS, name)


def seconds_setting(table: dict[str, tuple[str, float]], name: str) -> float:
    """A setting in seconds from `table` (config key -> (environment variable, default)): the app's config,
    else the environment, else the default; a value that is not a number is logged and the default used."""
    env_name, default = table[name]
    if has_app_context() and current_app.config.get(name) is not None:
        return float(current_app.config[name])
    raw = os.environ.get(env_name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        log.warning("%s=%r is not a number of seconds; using %s", env_name, raw, default)
        return default


# --------------------------------------------------------------------------- pure decisions


def retry_delay_seconds(attempts_done: int, first_seconds: float, budget_seconds: float) -> float | None:
    """How long to wait after the `attempts_done`-th failed attempt: first_seconds, then doubling (30, 60,
    120, ...); None once the next attempt's place in that schedule (first * (2**attempts_done - 1) after
    the alert) would be past the budget. Counted on the schedule, not the clock: a delivery gets the same
    number of attempts however slow each one was (30 s and one hour: 7 attempts)."""
    if first_seconds * (2 ** attempts_done - 1) > budget_seconds:
        return None
    return first_seconds * 2 ** max(attempts_done - 1, 0)


def attempt_deadline_seconds(configured: float) -> float:
    """An attempt's hard overall limit: the setting, within 1 s .. MAX_ATTEMPT_DEADLINE_SECONDS."""
    return min(max(configured, 1.0), MAX_ATTEMPT_DEADLINE_SECONDS)


def lease_seconds(deadline_seconds: float) -> float:
    """How long a claimed attempt is its own before the sweep tries it again (its worker died): its
    deadline plus a margin, so an attempt still running can never be claimed a second time."""
    return deadline_seconds + LEASE_MARGIN_SECONDS


def budget_spent(attempts_done: int, first_seconds: float, budget_seconds: float) -> bool:
    """Whether a delivery with `attempts_done` attempts (finished or not) may have no more."""
    return attempts_done > 0 and retry_delay_seconds(attempts_done, first_seconds, budget_seconds) is None


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret value masked, bounded to MAX_ERROR_CHARS."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text[:MAX_ERROR_CHARS]


def run_link(event: dict[str, Any], public_url: str) -> str | None:
    """The admin page of the run (or the task) the event is about, under CHIME_PUBLIC_URL (None if unset)."""
    if not public_url:
        return None
    if event.get("execution_id"):
        return f"{public_url}/logs/{int(event['execution_id'])}"
    if event.get("task_id"):
        return f"{public_url}/tasks/{int(event['task_id'])}"
    return None


def job_id(delivery_pk: int, attempts_done: int) -> str:
    return f"chime-alert-{delivery_pk}-{attempts_done + 1}"


# --------------------------------------------------------------------------- the API for other pieces


def enqueue_delivery(channel: Channel, event: dict[str, Any], *, force: bool = False,
                     now: datetime | None = None) -> Delivery | None:
    """Add a pending delivery of `event` to `channel` to the caller's unit of work; its job is pushed to
    the alerts queue after the commit. None (nothing added) when the channel is disabled or muted,
    unless `force` (a test send)."""
    now = now or utcnow()
    if not force and (not channel.enabled or (channel.muted_until is not None and channel.muted_until > now)):
        return None
    name = event.get("event")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_EVENT_NAME_CHARS:
        raise ValidationError({"event": f"must be an event name of 1 to {MAX_EVENT_NAME_CHARS} characters"})
    delivery_id = str(uuid.uuid4())
    payload = {**event, "delivery_id": delivery_id, "occurred_at": event.get("occurred_at") or isoformat(now),
               "link": event.get("link") or run_link(event, current_app.config.get("PUBLIC_URL") or "")}
    delivery = Delivery(delivery_id=delivery_id, channel_id=channel.id, channel_name=channel.name, event=name,
                        task_id=event.get("task_id"), execution_id=event.get("execution_id"),
                        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, payload=payload,
                        created_at=now)
    db.session.add(delivery)
    db.session.flush()
    row_id, redis, urgent = delivery.id, get_redis(), name in URGENT_EVENTS
    after_commit(lambda: push(redis, row_id, 0, urgent=urgent))
    return delivery


def push(connection: Redis, delivery_pk: int, attempts_done: int, *, urgent: bool = False) -> bool:
    """Put the job of the delivery's next attempt on the alerts queue (at its front when `urgent`) unless
    it is already there or running; say whether this call pushed it."""
    ident = job_id(delivery_pk, attempts_done)
    try:
        existing = Job.fetch(ident, connection=connection)
        status = existing.get_status(refresh=False)
    except NoSuchJobError:
        status = None
    if status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        return False
    if status is not None:
        existing.delete()
    Queue(ALERTS_QUEUE, connection=connection).enqueue_call(
        DELIVER_FUNC, kwargs={"delivery_pk": delivery_pk, "attempts_done": attempts_done}, job_id=ident,
        timeout=JOB_TIMEOUT_SECONDS, result_ttl=JOB_RESULT_TTL_SECONDS,
        failure_ttl=JOB_FAILURE_TTL_SECONDS, description=f"alert delivery {delivery_pk} attempt {attempts_done + 1}",
        at_front=urgent)
    return True


def sweep(connection: Redis, now: datetime | None = None) -> int:
    """Push a job for every pending delivery that is due (a retry, a lost push, a dead worker's lease);
    return how many this pass pushed."""
    now = now or utcnow()
    begin_read_only()  # a read: on SQLite it takes no write lock
    try:
        due = db.session.execute(
            select(Delivery.id, Delivery.attempts, Delivery.event)
            .where(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now)
            .order_by(Delivery.next_attempt_at).limit(SWEEP_BATCH)).all()
    finally:
        db.session.rollback()
    return sum(1 for row_id, attempts, event in due
               if push(connection, row_id, attempts, urgent=event in URGENT_EVENTS))


# --------------------------------------------------------------------------- one attempt


@dataclass(frozen=True)
class Claimed:
    """What an attempt needs, read inside its claim (no row is used across the network call)."""

    attempt: int
    kind: ChannelKind | None
    config: dict[str, Any]
    sealed: str | None
    payload: dict[str, Any]
    event: str
    created_at: datetime
    deadline_seconds: float  # the attempt's hard limit, shorter than the lease its claim took


def attempt(delivery_pk: int, attempts_done: int, now: datetime | None = None) -> DeliveryStatus | None:
    """Make one attempt of a delivery, if it is still pending, due and at `attempts_done`: claim it,
    send, record the attempt and what follows (delivered, a retry, or failed with an ERROR notification).
    None when there was nothing to do (a duplicate or stale job)."""
    claimed = claim(delivery_pk, attempts_done, now or utcnow())
    if claimed is None:
        return None
    started = time.monotonic()
    outcome, secrets = send(claimed, senders.Deadline(claimed.deadline_seconds))
    duration_ms = int((time.monotonic() - started) * 1000)
    if outcome.error:
        outcome = senders.Outcome(outcome.ok, outcome.status, outcome.reply, scrub(outcome.error, secrets))
    return record(delivery_pk, claimed, outcome, duration_ms, utcnow())


def claim(delivery_pk: int, attempts_done: int, now: datetime) -> Claimed | None:
    """Take the delivery's next attempt (one conditional UPDATE) and lease it for the attempt's deadline
    plus a margin; None when it is not this job's to make (taken, done, not due). A delivery whose budget
    is spent without a recorded end (its workers kept dying) fails here with the ERROR notification; one
    whose channel is now disabled fails without one (a test send still goes)."""
    deadline = attempt_deadline_seconds(setting("ALERT_ATTEMPT_DEADLINE_SECONDS"))
    with unit_of_work():
        delivery = db.session.get(Delivery, delivery_pk)
        if delivery is None:
            return None
        channel = delivery.channel
        if budget_spent(attempts_done, setting("ALERT_RETRY_FIRST_SECONDS"), setting("ALERT_RETRY_BUDGET_SECONDS")):
            _end_unsent(delivery, attempts_done, now, f"attempt {attempts_done} never finished (its worker "
                                                      "stopped) and the retry budget is spent", notify=True)
            return None
        if channel is not None and not channel.enabled and delivery.event != TEST_EVENT:
            _end_unsent(delivery, attempts_done, now, DISABLED_ERROR, notify=False)
            return None
        taken = db.session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_pk, Delivery.status == DeliveryStatus.PENDING,
                   Delivery.attempts == attempts_done, Delivery.next_attempt_at <= now)
            .values(attempts=attempts_done + 1, last_attempt_at=now,
                    next_attempt_at=now + timedelta(seconds=lease_seconds(deadline)))
            .execution_options(synchronize_session=False)).rowcount
        if not taken:
            return None
        kind = ChannelKind(channel.kind) if channel is not None else None
        return Claimed(attempts_done + 1, kind, dict(channel.config) if channel else {},
                       channel.secrets if channel else None, dict(delivery.payload), delivery.event,
                       delivery.created_at, deadline)


def _end_unsent(delivery: Delivery, attempts_done: int, now: datetime, error: str, *, notify: bool) -> None:
    """Fail a due pending delivery at `attempts_done` without another attempt (if it still is one)."""
    ended = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id, Delivery.status == DeliveryStatus.PENDING,
               Delivery.attempts == attempts_done, Delivery.next_attempt_at <= now)
        .values(status=DeliveryStatus.FAILED, next_attempt_at=None, error=error)
        .execution_options(synchronize_session=False)).rowcount
    if ended and notify:
        db.session.refresh(delivery)
        db.session.add(given_up(delivery))


def send(claimed: Claimed, deadline: senders.Deadline) -> tuple[senders.Outcome, list[str]]:
    """One attempt to the channel within `deadline`; (its outcome, the secret values to keep out of any
    error text)."""
    if claimed.kind is None:
        return senders.Outcome(False, error="the channel was deleted"), []
    try:
        secrets = channel_secrets.unseal(claimed.sealed)
    except channel_secrets.SecretsKeyError as error:
        return senders.Outcome(False, error=str(error)), []
    values = [str(value) for value in secrets.values()]
    try:
        return _send_kind(claimed, secrets, deadline), values
    except senders.SendError as error:
        return senders.Outcome(False, error.status, error.reply, str(error)), values


def _send_kind(claimed: Claimed, secrets: dict[str, Any], deadline: senders.Deadline) -> senders.Outcome:
    payload = claimed.payload
    if claimed.kind == ChannelKind.WEBHOOK:
        body = senders.encode(payload)
        headers = senders.webhook_headers(claimed.event, str(payload["delivery_id"]), str(secrets.get("secret", "")),
                                          body, int(time.time()))
        # the URL is sealed with the secrets; a channel saved before that keeps it in its config
        return senders.post_json(str(secrets.get("url") or claimed.config["url"]), body, headers, deadline)
    if claimed.kind == ChannelKind.SLACK:
        body = senders.encode(senders.slack_body(payload))
        headers = {"Content-Type": "application/json", "User-Agent": senders.USER_AGENT}
        return senders.post_json(str(secrets.get("url", "")), body, headers, deadline)
    message = senders.email_message(payload, claimed.config["from_address"], list(claimed.config["to"]))
    return senders.send_email(claimed.config, secrets.get("password"), message, deadline)


def record(delivery_pk: int, claimed: Claimed, outcome: senders.Outcome, duration_ms: int,
           now: datetime) -> DeliveryStatus:
    """Store the attempt and the delivery's new state: delivered, pending (a retry) or failed.

    The state changes only while the claim is still this attempt's (pending, at its attempt number): a
    stale attempt (another took the delivery since) adds its attempt row and leaves the state to the
    newer one -- except a success, which marks a delivery still pending delivered (the receiver has it).
    Returns the delivery's state as this attempt leaves it."""
    with unit_of_work():
        db.session.add(DeliveryAttempt(delivery_id=delivery_pk, attempt=claimed.attempt, attempted_at=now,
                                       ok=outcome.ok, response_status=outcome.status, reply=outcome.reply,
                                       error=outcome.error, duration_ms=duration_ms))
        mine = [Delivery.id == delivery_pk, Delivery.status == DeliveryStatus.PENDING]
        if outcome.ok:
            status, values = DeliveryStatus.DELIVERED, {"status": DeliveryStatus.DELIVERED, "next_attempt_at": None}
        else:
            mine.append(Delivery.attempts == claimed.attempt)
            delay = None if claimed.kind is None else retry_delay_seconds(
                claimed.attempt, setting("ALERT_RETRY_FIRST_SECONDS"), setting("ALERT_RETRY_BUDGET_SECONDS"))
            status = DeliveryStatus.FAILED if delay is None else DeliveryStatus.PENDING
            values = {"status": status,
                      "next_attempt_at": None if delay is None else now + timedelta(seconds=delay)}
        changed = db.session.execute(
            update(Delivery).where(*mine)
            .values(response_status=outcome.status, error=outcome.error, **values)
            .execution_options(synchronize_session=False)).rowcount
        delivery = db.session.get(Delivery, delivery_pk)
        assert delivery is not None  # deleted only with its channel's history by retention, never mid-attempt
        if not changed:
            db.session.refresh(delivery)
            return DeliveryStatus(delivery.status)
        if status == DeliveryStatus.FAILED:
            db.session.refresh(delivery)
            db.session.add(given_up(delivery))
        return status


def given_up(delivery: Delivery) -> Notification:
    """The ERROR notification of a delivery that exhausted its retries."""
    return Notification(
        task_id=delivery.task_id, execution_id=delivery.execution_id, level=Level.ERROR.value,
        title=f"Alert not delivered to channel {delivery.channel_name}"[:300],
        message=(f"The {delivery.event} alert (delivery {delivery.delivery_id}) failed after "
                 f"{delivery.attempts} attempt(s): {delivery.error or 'no answer'}"))
