"""Template filters, globals and the dashboard chart's geometry for the admin pages."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from flask import Response, current_app, g, request, session, url_for
from sqlalchemy.exc import SQLAlchemyError

from chime import audit
from chime.triggers import ScheduleError, describe_cron
from chime.extensions import db
from chime.models import Role, ScheduleType, Status
from webapp.admin import forms
from webapp.admin.wording import human_seconds
from webapp.queries import CHART_OUTCOMES, HourBucket, unread_notifications
from chime.timeutil import as_utc, isoformat, utcnow

STATUS_ORDER = tuple(Status)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


# --------------------------------------------------------------------------- text


def relative_time(value: datetime | str | None, now: datetime | None = None) -> str:
    """'in 3 min', '2 h ago', 'just now' (the page's JS keeps it current)."""
    value = to_datetime(value)
    if value is None:
        return "—"
    delta = (as_utc(value) - as_utc(now or utcnow())).total_seconds()
    if abs(delta) < 45:
        return "just now" if delta <= 0 else "in a few seconds"
    if abs(delta) >= 365 * 86400:
        years = f"{abs(delta) / (365.25 * 86400):.1f}".removesuffix(".0")
        return f"in {years} y" if delta > 0 else f"{years} y ago"
    if abs(delta) >= 30 * 86400:
        days = round(abs(delta) / 86400)
        return f"in {days} d" if delta > 0 else f"{days} d ago"
    amount = human_seconds(round(abs(delta) / 60) * 60 if abs(delta) < 3600 else abs(delta)).split(" ")
    text = " ".join(amount[:2])
    return f"in {text}" if delta > 0 else f"{text} ago"


def duration(ms: int | None) -> str:
    """Execution duration: '120 ms', '3.2 s', '2 min 5 s'."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return human_seconds(ms // 1000)


def cron_description(expr: str | None) -> str:
    if not expr:
        return ""
    try:
        return describe_cron(expr)
    except ScheduleError:
        return ""


def schedule_summary(task: Any) -> str:
    """A short description of a task's schedule (ONE_TIME's time is shown as a <time> separately)."""
    if task.schedule_type == ScheduleType.INTERVAL:
        return f"Every {human_seconds(task.interval_seconds)}"
    if task.schedule_type == ScheduleType.CRON:
        return cron_description(task.cron) or f"Cron {task.cron}"
    return "Once"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def status_class(status: str | None) -> str:
    return f"badge badge-{(status or 'none').lower()}"


def to_datetime(value: datetime | str | float | None) -> datetime | None:
    """Accept an aware datetime, the ISO text the stats document holds, or epoch seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return as_utc(value)


def iso(value: datetime | str | None) -> str:
    return isoformat(to_datetime(value)) or ""


def utc_text(value: datetime | str | None) -> str:
    """The server-side text of a <time> element (the browser rewrites it in its own zone)."""
    instant = to_datetime(value)
    if instant is None:
        return "—"
    return instant.strftime("%Y-%m-%d %H:%M:%S UTC" if instant.second else "%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- urls


def url_with(**changes: Any) -> str:
    """The current page's URL with some query arguments changed (None removes one)."""
    args = request.args.to_dict()
    for key, value in changes.items():
        if value is None or value == "":
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def asset(filename: str) -> str:
    """A static file's URL with its modification time, so browsers refetch changed files."""
    path = os.path.join(current_app.static_folder or "", filename)
    try:
        version = int(os.path.getmtime(path))
    except OSError:
        version = 0
    return url_for("static", filename=filename, v=version)


# --------------------------------------------------------------------------- chart


OUTCOME_WORDS = {Status.SUCCESS: "succeeded", Status.FAILED: "failed", Status.RETRYING: "retrying",
                 Status.SKIPPED: "skipped", Status.CANCELLED: "cancelled", "OTHER": "other"}


def outcome_phrase(counts: dict[str, int]) -> str:
    """'3 succeeded, 1 failed': the outcomes present, in OUTCOME_WORDS order ('' when none)."""
    return ", ".join(f"{counts[o]} {OUTCOME_WORDS[o]}" for o in OUTCOME_WORDS if counts.get(o))


@dataclass(frozen=True)
class Bar:
    y: float
    height: float
    outcome: str
    count: int


@dataclass(frozen=True)
class Column:
    x: float
    width: float
    hour: str
    counts: dict[str, int]
    bars: list[Bar]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def summary(self) -> str:
        return outcome_phrase(self.counts) or "no runs"


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom_y: float
    plot_height: float
    columns: list[Column]
    ticks: list[tuple[float, int]]
    labels: list[tuple[float, str]]
    totals: dict[str, int]
    outcomes: tuple[str, ...] = (*CHART_OUTCOMES, "OTHER")

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    @property
    def summary(self) -> str:
        outcomes = outcome_phrase(self.totals)
        return f"{self.total} runs in the last 24 hours" + (": " + outcomes if outcomes else "")


def build_chart(buckets: list[HourBucket], width: int = 720, height: int = 220) -> Chart:
    """Stacked bars per hour: geometry for the dashboard's inline SVG."""
    left, right, top, bottom = 34, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    scale_max = _nice_ceiling(max((b.total for b in buckets), default=0))
    slot = plot_w / max(len(buckets), 1)
    columns, labels, totals = [], [], {}
    for index, bucket in enumerate(buckets):
        x = left + index * slot
        bars, stacked = [], 0
        for outcome in (*CHART_OUTCOMES, "OTHER"):
            count = bucket.counts.get(outcome, 0)
            if count:
                y = top + plot_h - plot_h * (stacked + count) / scale_max
                bars.append(Bar(round(y, 2), round(plot_h * count / scale_max, 2), outcome, count))
                stacked += count
                totals[outcome] = totals.get(outcome, 0) + count
        hour = isoformat(bucket.start) or ""
        columns.append(Column(round(x, 2), round(slot, 2), hour, dict(bucket.counts), bars))
        if index % 4 == 0:
            labels.append((round(x + slot / 2, 2), hour))
    ticks = [(round(top + plot_h - plot_h * v / scale_max, 2), v) for v in (0, scale_max // 2, scale_max)]
    return Chart(width, height, left, right, top, top + plot_h, plot_h, columns, ticks, labels, totals)


def _nice_ceiling(value: int) -> int:
    """The smallest 'round' even number >= value (2, 4, 10, 20, 50, ...), at least 2."""
    for step in (2, 4, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000):
        if value <= step:
            return step
    return ((value + 9999) // 10000) * 10000


# --------------------------------------------------------------------------- registration


def nav_context() -> dict[str, Any]:
    """Values every admin page's layout needs."""
    if not session.get("user_id") or request.path.startswith("/api/"):
        return {"unread_count": 0, "latest_unread_id": 0}
    try:
        count, latest = unread_notifications()
    except SQLAlchemyError:  # an error page about a database outage must still render
        db.session.rollback()
        return {"unread_count": 0, "latest_unread_id": 0}
    return {"unread_count": count, "latest_unread_id": latest}


def can(role: str) -> bool:
    """In templates: `{% if can("operator") %}` shows an action only to a user whose role allows it
    (the route checks again: hiding a button is a courtesy, not the guard)."""
    user = g.get("user")
    return user is not None and Role(user.role).includes(Role(role))


def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def register(bp: Any) -> None:
    """Install the filters and globals (app-wide, so error pages get them too) via the admin blueprint."""
    bp.add_app_template_filter(human_seconds, "human_seconds")
    bp.add_app_template_filter(relative_time, "relative")
    bp.add_app_template_filter(duration, "duration")
    bp.add_app_template_filter(iso, "iso")
    bp.add_app_template_filter(utc_text, "utc_text")
    bp.add_app_template_filter(pretty_json, "pretty_json")
    bp.add_app_template_filter(status_class, "status_class")
    bp.add_app_template_filter(cron_description, "cron_description")
    bp.add_app_template_filter(schedule_summary, "schedule_summary")
    bp.add_app_template_global(url_with, "url_with")
    bp.add_app_template_global(can, "can")
    bp.add_app_template_filter(audit.shown_args, "shown_args")
    bp.add_app_template_global(asset, "asset")
    bp.add_app_template_global(STATUS_ORDER, "STATUS_ORDER")
    bp.add_app_template_global(forms.generic_inputs, "generic_task_inputs")
    bp.app_context_processor(nav_context)
    bp.after_request(security_headers)
