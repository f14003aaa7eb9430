"""Refuse password guessing on the login form, without ever sleeping inside the request.

Flask-Limiter counts failed sign-ins (the login form answering 401) in Redis, in a moving
window of WINDOW, under three keys (LOGIN_LIMITS): the user name from one client, the
client (any user names), and the user name from any client. Before each sign-in it checks
the counts; once one is used up the form answers 429 with Retry-After at once, until the
oldest counted failure leaves the window. Only failures count, so signing in is never
refused for a user who has not failed, and one user's lockout leaves other users alone.

The client is `request.remote_addr`: the TCP peer, unless CHIME_PROXY_FIX_X_FOR=N tells
Werkzeug's ProxyFix to trust N X-Forwarded-For entries (set it to the number of reverse
proxies in front of the app, never more). The counters use the app's own Redis client
(REDIS_URL, Sentinel and passwords included); while Redis is down they are kept in the
process's memory (Flask-Limiter's in-memory fallback) and a warning is logged.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from redis.exceptions import RedisError

from chime.redis_keys import THROTTLE_KEY_PREFIX as KEY_PREFIX

log = logging.getLogger(__name__)

WINDOW = "15 minutes"
WINDOW_SECONDS = 15 * 60
LOGIN_ENDPOINT = "admin.login"
EXTENSION_KEY = "chime_limiter"


def user_key() -> str:
    """The submitted user name, normalised and hashed (user names are not stored in Redis)."""
    name = request.form.get("username", "").strip().lower()
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def client_key() -> str:
    return request.remote_addr or "unknown"


@dataclass(frozen=True)
class LoginLimit:
    """At most `failures` failed sign-ins per WINDOW for each value of `key`."""

    name: str
    failures: int
    key: Callable[[], str]

    @property
    def rate(self) -> str:
        return f"{self.failures} per {WINDOW}"

    def key_for_request(self) -> str:
        return f"{self.name}:{self.key()}"


PER_USER_AND_CLIENT = "user-client"
LOGIN_LIMITS = (
    LoginLimit(PER_USER_AND_CLIENT, 5, lambda: f"{user_key()}:{client_key()}"),
    LoginLimit("client", 20, client_key),
    LoginLimit("user", 50, user_key),
)


def is_failed_sign_in(response: Response) -> bool:
    return response.status_code == 401


def init_app(app: Flask) -> None:
    """Give the app its own limiter on the app's Redis and put LOGIN_LIMITS on the login view."""
    limiter = Limiter(
        key_func=client_key,
        storage_uri="redis://",  # the scheme picks limits' Redis storage; the pool is the app's
        storage_options={"connection_pool": app.extensions["redis"].connection_pool, "key_prefix": KEY_PREFIX},
        strategy="moving-window",
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        headers_enabled=False,
    )
    limiter.init_app(app)
    view = app.view_functions[LOGIN_ENDPOINT]
    for limit in LOGIN_LIMITS:
        view = limiter.limit(limit.rate, key_func=limit.key_for_request, methods=["POST"],
                             deduct_when=is_failed_sign_in, scope="login")(view)
    app.view_functions[LOGIN_ENDPOINT] = view
    app.extensions[EXTENSION_KEY] = limiter


def retry_after_seconds(now: float) -> int:
    """Seconds until the breached limit of this request allows another attempt (at least 1)."""
    limiter: Limiter | None = current_app.extensions.get(EXTENSION_KEY)
    breached = limiter.current_limit if limiter is not None else None
    if breached is None:
        return WINDOW_SECONDS
    try:
        reset_at = breached.reset_at
    except RedisError as error:  # Redis went away since the check: the whole window is the safe answer
        log.warning("Login throttle unavailable (Redis: %s)", error)
        return WINDOW_SECONDS
    return max(1, min(WINDOW_SECONDS, int(reset_at - now)))


def forget_failures() -> None:
    """After a successful sign-in, forget the failures of this user name from this client."""
    limiter: Limiter | None = current_app.extensions.get(EXTENSION_KEY)
    if limiter is None:
        return
    for counted in limiter.current_limits:
        if any(str(arg).startswith(f"{PER_USER_AND_CLIENT}:") for arg in counted.request_args):
            try:
                limiter.limiter.clear(counted.limit, *counted.request_args)
            except RedisError as error:
                log.warning("Login throttle unavailable (Redis: %s)", error)


def lockout_message(seconds: int) -> str:
    return f"Too many failed sign-in attempts; try again in {seconds} s."
