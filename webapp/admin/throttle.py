"""Slow down password guessing on the login form.

Failed sign-ins are counted in Redis per (user name, client address) and per client
address, each counter expiring WINDOW_SECONDS after its first failure. Every failure
waits a little longer before answering (0.25 s, 0.5 s, 1 s, 2 s); from MAX_FAILURES on
the form answers 429 until the counter expires. When Redis is down the throttle is off
(signing in must keep working) and a warning is logged.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from flask import current_app, request
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

WINDOW_SECONDS = 15 * 60
MAX_FAILURES = 5  # per user name and address
MAX_FAILURES_PER_ADDRESS = 20  # any user names from one address
BASE_DELAY_SECONDS = 0.25
MAX_DELAY_SECONDS = 2.0
KEY_PREFIX = "chime:login-failures:"

sleep = time.sleep  # tests replace this


@dataclass(frozen=True)
class Lockout:
    retry_after_seconds: int

    @property
    def message(self) -> str:
        return f"Too many failed sign-in attempts; try again in {self.retry_after_seconds} s."


def _keys(username: str) -> tuple[str, str]:
    address = request.remote_addr or "unknown"
    digest = hashlib.sha256(username.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{KEY_PREFIX}user:{digest}:{address}", f"{KEY_PREFIX}addr:{address}"


def _redis():  # noqa: ANN202 - a redis.Redis
    return current_app.extensions["redis"]


def lockout(username: str) -> Lockout | None:
    """Return the lockout in force for this user name and address, if any."""
    user_key, address_key = _keys(username)
    try:
        with _redis().pipeline(transaction=False) as pipe:
            pipe.get(user_key).ttl(user_key).get(address_key).ttl(address_key)
            user_count, user_ttl, address_count, address_ttl = pipe.execute()
    except RedisError as error:
        log.warning("Login throttle unavailable (Redis: %s)", error)
        return None
    waits = []
    if int(user_count or 0) >= MAX_FAILURES:
        waits.append(user_ttl)
    if int(address_count or 0) >= MAX_FAILURES_PER_ADDRESS:
        waits.append(address_ttl)
    if not waits:
        return None
    return Lockout(retry_after_seconds=max(1, max(int(w) if w and w > 0 else WINDOW_SECONDS for w in waits)))


def record_failure(username: str) -> int:
    """Count a failed sign-in, wait the growing delay, and return the failures so far."""
    user_key, address_key = _keys(username)
    try:
        with _redis().pipeline() as pipe:
            for key in (user_key, address_key):  # SET NX EX starts the window; INCR keeps the TTL
                pipe.set(key, 0, ex=WINDOW_SECONDS, nx=True).incr(key)
            failures = int(pipe.execute()[1])
    except RedisError as error:
        log.warning("Login throttle unavailable (Redis: %s)", error)
        return 0
    sleep(delay_for(failures))
    return failures


def delay_for(failures: int) -> float:
    """The wait after the n-th failure: doubling from BASE_DELAY_SECONDS up to MAX_DELAY_SECONDS."""
    if failures <= 0:
        return 0.0
    return min(BASE_DELAY_SECONDS * 2 ** (failures - 1), MAX_DELAY_SECONDS)


def record_success(username: str) -> None:
    """Forget this user name's failures from this address."""
    user_key, _ = _keys(username)
    try:
        _redis().delete(user_key)
    except RedisError as error:
        log.warning("Login throttle unavailable (Redis: %s)", error)
