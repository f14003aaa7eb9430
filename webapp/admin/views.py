"""Admin pages."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, session, url_for

from webapp.admin import bp
from webapp.auth import authenticate, login_required, login_user, logout_user


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("admin.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "POST":
        user = authenticate(request.form.get("username", ""), request.form.get("password", ""))
        if user is not None:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong user name or password.", "error")
        return render_template("login.html"), 401
    return render_template("login.html")


@bp.post("/logout")
def logout() -> Any:
    logout_user()
    return redirect(url_for("admin.login"))


@bp.get("/")
@login_required
def dashboard() -> Any:
    return render_template("dashboard.html", username=session.get("username"))
