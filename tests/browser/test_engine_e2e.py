"""Live run tables in Chromium, first against the REAL engine (the Procfile's `rq worker` and
scheduler processes), then with hand-made rows to check the live rows match the server's exactly.

Tasks are created through the form; their runs, produced by the engine, must appear in the run
history and in the notification bell without reloading the page.
"""
from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis as redis_lib
from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.browser.conftest import LiveServer, log_in, make_live_app, open_page, screenshot, start_live_server
from tests.browser.seed import add_execution
from tests.engine_fixtures import Engine, wait_for
from tests.services import RedisServer
from chime import services
from chime.config import normalise_database_url
from chime.extensions import db
from chime.models import Execution, Task
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work

pytestmark = pytest.mark.browser

WAIT_MS = 20_000  # the longest any expectation waits: runs every 2 s, the page polls every 4 s


class EngineSite:
    """A live server and the engine's processes sharing one SQLite file and one redis-server."""

    def __init__(self, server: LiveServer, engine: Engine, redis: redis_lib.Redis) -> None:
        self.server = server
        self.engine = engine
        self.redis = redis

    def task_id(self, name: str) -> int:
        with self.server.app_context():
            return db.session.scalar(select(Task.id).where(Task.name == name))

    def runs(self, task_id: int) -> list[Execution]:
        with self.server.app_context():
            rows = list(db.session.scalars(select(Execution).where(Execution.task_id == task_id)
                                           .order_by(Execution.id)).all())
            db.session.expunge_all()
            return rows

    def run_count(self, task_id: int) -> int:
        with self.server.app_context():
            return db.session.scalar(select(func.count()).select_from(Execution).where(Execution.task_id == task_id))


@pytest.fixture
def site(tmp_path: Path, engine_redis: RedisServer) -> Iterator[EngineSite]:
    database = tmp_path / "chime.sqlite3"
    server = start_live_server(make_live_app(database, engine_redis.url))
    (tmp_path / "engine").mkdir()
    engine = Engine({
        **os.environ,
        "DATABASE_URL": normalise_database_url(f"sqlite:///{database}"),
        "REDIS_URL": engine_redis.url,
        "SECRET_KEY": "engine-e2e",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }, tmp_path / "engine")
    connection = redis_lib.Redis.from_url(engine_redis.url)
    try:
        engine.start_engine(connection, workers=1, schedulers=1)
        yield EngineSite(server, engine, connection)
    finally:
        print(engine.logs())  # shown only when the test fails
        engine.stop_all()
        server.stop()
        with server.app.app_context():
            db.engine.dispose()
        connection.close()


@pytest.fixture
def engine_page(browser: Any, site: EngineSite) -> Iterator[Any]:
    with open_page(browser, site.server.url) as tab:
        yield tab


def bell_count(page: Any) -> int:
    return int(page.locator("[data-bell-count]").inner_text() or "0")


def create_interval_task(page: Any, name: str) -> None:
    page.goto("/tasks/new")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Job").select_option("echo")
    page.locator("[data-job-args=echo]").get_by_label("message").fill("still alive")
    page.get_by_role("radio", name="Interval").check()
    page.get_by_label("Interval (seconds)").fill("2")
    page.get_by_role("button", name="Create task").click()
    page.wait_for_url(re.compile(r"/tasks/\d+$"))


def create_failing_task(page: Any, name: str, message: str) -> None:
    page.goto("/tasks/new")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Job").select_option("fail")
    page.locator("[data-job-args=fail]").get_by_label("message").fill(message)
    page.get_by_role("radio", name="One time").check()
    zone = ZoneInfo(page.get_by_label("Time zone").input_value() or "UTC")
    page.get_by_label("Run at (one time)").fill(datetime.now(zone).strftime("%Y-%m-%dT%H:%M:%S"))  # due now
    page.get_by_label("Max retries").fill("0")
    page.get_by_role("button", name="Create task").click()
    page.wait_for_url(re.compile(r"/tasks/\d+$"))


@pytest.mark.engine
def test_engine_runs_appear_live_and_disabling_stops_them(engine_page: Any, site: EngineSite) -> None:
    page = engine_page
    started = time.monotonic()
    log_in(page)

    # An interval task, created through the form: its runs arrive in the history while we watch.
    create_interval_task(page, "Heartbeat")
    heartbeat_id = site.task_id("Heartbeat")
    page.evaluate("() => { window.__sameDocument = true; }")
    initial_bell = bell_count(page)
    history = page.get_by_role("table", name="Runs of Heartbeat")
    successes = history.locator("tbody tr").filter(has=page.locator(".badge-success"))
    expect(successes.nth(1)).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("[data-bell-count]")).not_to_have_text(str(initial_bell), timeout=WAIT_MS)
    assert bell_count(page) > initial_bell
    expect(page.locator("[data-bell-count]")).to_be_visible()
    # The live rows look like the server's: a link to the run, a badge, times in the browser's zone.
    newest = successes.first
    run_id = newest.get_attribute("data-run-id")
    expect(newest.get_by_role("link", name=f"#{run_id}")).to_have_attribute("href", f"/logs/{run_id}")
    expect(newest.locator("td").nth(2)).to_have_text("Schedule")
    scheduled = newest.locator("td").nth(4).locator("time")
    expect(scheduled).to_have_attribute("datetime", re.compile(r"\+00:00$"))
    assert "UTC" not in scheduled.inner_text()  # rewritten in Europe/Berlin by app.js
    # The task's own badges follow as well.
    expect(page.locator("[data-task-last-run] .badge-success")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("[data-task-next-runs] li").first).to_be_visible()
    assert page.evaluate("() => window.__sameDocument") is True  # no reload happened
    screenshot(page, "engine-task-detail")

    # A one-time task that fails: its run shows up failed; its detail page has the error.
    create_failing_task(page, "Broken import", "orders.example.com refused the connection")
    failed_history = page.get_by_role("table", name="Runs of Broken import")
    failed_row = failed_history.locator("tbody tr").filter(has=page.locator(".badge-failed"))
    expect(failed_row).to_have_count(1, timeout=WAIT_MS)
    expect(failed_row).to_contain_text("orders.example.com refused the connection")
    screenshot(page, "engine-failed-task-detail")
    failed_row.get_by_role("link", name=re.compile(r"^#\d+$")).click()
    page.wait_for_url(re.compile(r"/logs/\d+$"))
    expect(page.locator("[data-message]")).to_contain_text("orders.example.com refused the connection")
    screenshot(page, "engine-failed-run")

    # Disabling the interval task from its page stops the engine from running it.
    page.goto(f"/tasks/{heartbeat_id}")
    page.get_by_role("button", name="Disable", exact=True).click()
    page.wait_for_url(re.compile(rf"/tasks/{heartbeat_id}$"))
    expect(page.locator(".flash")).to_contain_text("disabled")
    expect(page.locator("[data-task-enabled]")).to_have_text("Disabled")

    def drained() -> bool:
        busy = [r for r in site.runs(heartbeat_id) if r.status in ("PENDING", "RUNNING")]
        return not busy and not site.redis.llen("rq:queue:default")

    wait_for(drained, 10, "the pending run to drain", site.engine)
    settled = site.run_count(heartbeat_id)
    page.wait_for_timeout(4_500)  # two intervals, and one more poll of the page
    assert site.run_count(heartbeat_id) == settled, "the engine ran a disabled task"
    expect(history.locator("tbody tr[data-run-id]")).to_have_count(min(settled, 20))
    expect(page.locator("[data-task-next-runs]")).to_contain_text("The task is disabled")
    screenshot(page, "engine-task-disabled")
    assert time.monotonic() - started < 60


@pytest.mark.engine
def test_dashboard_banner_follows_the_scheduler_without_a_reload(engine_page: Any, site: EngineSite) -> None:
    page = engine_page
    log_in(page)  # lands on the dashboard
    banner, scheduler = page.locator("[data-engine-alert]"), page.locator("[data-engine-scheduler]")
    expect(banner).to_be_hidden()
    expect(scheduler).to_contain_text("Running")
    page.evaluate("() => { window.__sameDocument = true; }")
    name = next(n for n in site.engine.processes if n.startswith("scheduler"))

    site.engine.stop(name)  # SIGTERM: the scheduler releases its lock and its heartbeat
    expect(banner).to_contain_text("The scheduler is not running", timeout=WAIT_MS)
    expect(scheduler).to_contain_text("Not running")

    site.engine.start("scheduler")
    expect(banner).to_be_hidden(timeout=WAIT_MS)
    expect(scheduler).to_contain_text("Running")
    expect(scheduler).not_to_contain_text("Not running")
    assert page.evaluate("() => window.__sameDocument") is True  # no reload happened


# A structural fingerprint of the table's rows: per cell its class, text and each element's tag,
# class, href, datetime and data-format. Live rows must fingerprint exactly like server-rendered ones.
ROWS_FINGERPRINT = """(table) => Array.from(table.tBodies[0].rows).map((tr) => [tr.dataset.runId, tr.dataset.runState,
  Array.from(tr.cells).map((td) => [td.className, td.textContent, Array.from(td.querySelectorAll("*")).map((el) =>
    [el.tagName, el.className, el.getAttribute("href"), el.getAttribute("datetime"), el.dataset.format].join("|"))])])"""
HOSTILE = '<img src=x onerror="window.__xss = 1"> & <b>bold</b> ' + "word " * 40


def test_live_rows_follow_status_changes_and_match_the_server(page: Any, live_server: LiveServer) -> None:
    now = utcnow()
    with live_server.app_context():
        with unit_of_work():
            task = services.create_task({"name": "Import <orders>", "job": "noop", "schedule_type": "INTERVAL",
                                         "interval_seconds": 600}, allow_shell=False)
        old = add_execution(task, "SUCCESS", now - timedelta(minutes=10), duration_ms=83_000, message="fine")
        running = add_execution(task, "RUNNING", now - timedelta(seconds=3))
        running.duration_ms = running.finished_at = None
        db.session.commit()
        task_id, old_id, running_id = task.id, old.id, running.id
    log_in(page)
    page.goto(f"/tasks/{task_id}")
    page.evaluate("() => { window.__sameDocument = true; }")
    history = page.get_by_role("table", name="Runs of Import <orders>")
    expect(history.locator(f"tr[data-run-id='{running_id}'] .badge-running")).to_have_text("Running")

    with live_server.app_context():
        running = db.session.get(Execution, running_id)
        running.status, running.duration_ms, running.finished_at = "SUCCESS", 1_549, now
        db.session.get(Task, task_id).status = "FAILED"
        db.session.get(Task, task_id).last_status = "FAILED"
        failed = add_execution(db.session.get(Task, task_id), "FAILED", now, trigger="MANUAL", attempt=2,
                               duration_ms=250, message=HOSTILE)
        db.session.commit()
        failed_id = failed.id
    new_row = history.locator(f"tr[data-run-id='{failed_id}']")
    expect(new_row.locator(".badge-failed")).to_have_text("Failed", timeout=10_000)
    expect(history.locator(f"tr[data-run-id='{running_id}'] .badge-success")).to_have_text("Success")
    expect(history.locator(f"tr[data-run-id='{running_id}'] td").nth(6)).to_have_text("1.5 s")
    expect(history.locator(f"tr[data-run-id='{old_id}'] td").nth(6)).to_have_text("1 min 23 s")
    expect(new_row.locator("td.msg")).to_have_text(HOSTILE[:137].rsplit(" ", 1)[0] + "...")  # escaped, truncated
    assert history.locator("img, b").count() == 0 and page.evaluate("() => window.__xss") is None
    expect(page.locator("[data-task-status]")).to_have_text("Failed", timeout=10_000)
    expect(page.locator("[data-task-last-run] .badge-failed")).to_be_visible()
    expect(page.locator(".pagination")).to_contain_text("Showing 1–3 of 3 runs")
    live_rows = history.evaluate(ROWS_FINGERPRINT)
    assert page.evaluate("() => window.__sameDocument") is True
    page.reload()
    assert history.evaluate(ROWS_FINGERPRINT) == live_rows

    page.goto("/logs")
    logs = page.get_by_role("table", name="Runs")
    expect(logs.locator("tbody tr")).to_have_count(3)
    with live_server.app_context():
        newest = add_execution(db.session.get(Task, task_id), "RETRYING", utcnow(), message="try again")
        db.session.commit()
        newest_id = newest.id
    expect(logs.locator(f"tr[data-run-id='{newest_id}'] .badge-retrying")).to_be_visible(timeout=10_000)
    expect(logs.locator(f"tr[data-run-id='{newest_id}']").get_by_role("link", name="Import <orders>")) \
        .to_have_attribute("href", f"/tasks/{task_id}")
    live_rows = logs.evaluate(ROWS_FINGERPRINT)
    page.reload()
    assert logs.evaluate(ROWS_FINGERPRINT) == live_rows
    screenshot(page, "logs-live")

    # A hidden tab does not poll; showing it again polls at once.
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/api/logs/" in request.url else None)
    page.evaluate("() => Object.defineProperty(document, 'hidden', { value: true, configurable: true })")
    page.wait_for_timeout(4_500)
    assert polls == []
    page.evaluate("""() => { Object.defineProperty(document, 'hidden', { value: false, configurable: true });
                             document.dispatchEvent(new Event('visibilitychange')); }""")
    page.wait_for_timeout(500)
    assert len(polls) >= 1
