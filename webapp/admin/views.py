"""Admin pages: sign-in, sign-out and the dashboard."""
from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, session, url_for

from webapp import queries
from webapp.admin import bp, throttle
from webapp.admin.helpers import build_chart
from webapp.auth import authenticate, login_required, login_user, logout_user
from webapp.stats import collect_stats
from webapp.timeutil import utcnow

WRONG_CREDENTIALS = "Wrong user name or password."


def safe_next(target: str | None, default: str | None = None) -> str:
    """A local path to go to after an action; anything else goes to `default`."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default or url_for("admin.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html")
    username = request.form.get("username", "")
    lockout = throttle.lockout(username)
    if lockout is not None:
        response = render_template("login.html", username=username, error=lockout.message)
        return response, 429, {"Retry-After": str(lockout.retry_after_seconds)}
    user = authenticate(username, request.form.get("password", ""))
    if user is None:
        throttle.record_failure(username)
        return render_template("login.html", username=username, error=WRONG_CREDENTIALS), 401
    throttle.record_success(username)
    login_user(user)
    return redirect(safe_next(request.args.get("next")))


@bp.post("/logout")
def logout() -> Any:
    logout_user()
    return redirect(url_for("admin.login"))


@bp.get("/")
@login_required
def dashboard() -> Any:
    now = utcnow()
    stats = collect_stats(now)
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
