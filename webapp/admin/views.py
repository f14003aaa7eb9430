"""Admin pages: sign-in, sign-out and the dashboard."""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from flask import redirect, render_template, request, session, url_for
from flask_limiter.errors import RateLimitExceeded

from webapp import queries
from webapp.admin import throttle
from chime.enums import Role
from webapp.admin.blueprint import bp
from webapp.admin.helpers import build_chart
from webapp.auth import allow, authenticate, login_user, logout_user, public
from webapp.stats import dashboard_stats
from chime.timeutil import utcnow

WRONG_CREDENTIALS = "Wrong user name or password."


def safe_next(target: str | None, default: str | None = None) -> str:
    """A path on this site to go to after an action; anything else goes to `default`."""
    if target and is_local_path(target):
        return target
    return default or url_for("admin.dashboard")


def is_local_path(target: str) -> bool:
    """True for '/a/path?query' only: never '//host', '/\\host', 'https://host', 'javascript:'.

    Browsers drop tabs and newlines anywhere in a URL, trim control characters and read a
    backslash as a slash, so '/\t/evil.example' is '//evil.example' to them: any control
    character or backslash refuses the target instead of being normalised.
    """
    if any(ord(char) < 0x20 or ord(char) == 0x7F or char == "\\" for char in target):
        return False
    parts = urlsplit(target)
    return target.startswith("/") and not target.startswith("//") and not parts.scheme and not parts.netloc


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    """Sign in; LOGIN_LIMITS (webapp.admin.throttle) count the 401s and refuse with 429."""
    if request.method == "GET":
        return render_template("login.html")
    username = request.form.get("username", "")
    user = authenticate(username, request.form.get("password", ""))
    if user is None:
        return render_template("login.html", username=username, error=WRONG_CREDENTIALS), 401
    throttle.forget_failures()
    login_user(user)
    return redirect(safe_next(request.args.get("next")))


@bp.errorhandler(RateLimitExceeded)
def login_refused(error: RateLimitExceeded) -> Any:
    """Too many failed sign-ins: answer at once with when to try again (no sleeping)."""
    seconds = throttle.retry_after_seconds(time.time())
    html = render_template("login.html", username=request.form.get("username", ""),
                           error=throttle.lockout_message(seconds))
    return html, 429, {"Retry-After": str(seconds)}


@bp.post("/logout")
@public
def logout() -> Any:
    logout_user()
    return redirect(url_for("admin.login"))


@bp.get("/")
@allow(Role.VIEWER)
def dashboard() -> Any:
    now = utcnow()
    stats = dashboard_stats(now)
    return render_template(
        "dashboard.html", stats=stats, now=now, alerts=engine_alerts(stats),
        failures=queries.latest_failures(), chart=build_chart(queries.hourly_outcomes(now)),
        username=session.get("username"),
    )


def engine_alerts(stats: dict[str, Any]) -> list[str]:
    """Why the engine cannot run tasks right now, if it cannot."""
    if stats["queues"] is None:
        return ["Redis is unreachable: nothing can be scheduled or run."]
    alerts = []
    if not stats["scheduler"]["alive"]:
        alerts.append("The scheduler is not running: no task will fire on schedule.")
    if not stats["workers"]["count"]:
        alerts.append("No worker is running: queued runs are waiting.")
    return alerts
