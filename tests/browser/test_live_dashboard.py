"""The dashboard is live: pushed by the server (GET /events), with real web (the Procfile's gunicorn), worker
and scheduler processes. A run fails and the counters, chart and latest failures change without a reload;
the scheduler stops and the red banner appears, it comes back and the banner goes. A browser without
EventSource gets the same by polling."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from playwright.sync_api import expect

from tests.browser.conftest import log_in, make_live_app, open_page, screenshot
from tests.engine_fixtures import Engine, wait_for
from tests.services import RedisServer, free_port
from tests.web_process import call, web_answers
from chime.config import normalise_database_url
from chime.extensions import db
from chime.timeutil import utcnow

pytestmark = pytest.mark.browser

WAIT_MS = 20_000  # generous: the page follows within about a second when pushed, 4 s when polling
TOKEN = "live-dashboard-token"
SCHEDULER_DOWN = "The scheduler is not running"


class Site:
    def __init__(self, engine: Engine, base: str) -> None:
        self.engine = engine
        self.base = base

    def add_failing_task(self, name: str, message: str) -> None:
        """A one-time task due now whose only attempt fails (through the API, not the page)."""
        status, body = call(self.base, "POST", "/api/tasks/", token=TOKEN, body={
            "name": name, "job": "fail", "args": {"message": message},
            "schedule_type": "ONE_TIME", "run_at": utcnow().isoformat(), "max_retries": 0})
        assert status == 201, body

    def scheduler(self) -> str:
        return next(name for name in self.engine.processes if name.startswith("scheduler"))


@pytest.fixture
def site(tmp_path: Path, engine_redis: RedisServer) -> Iterator[Site]:
    database = tmp_path / "chime.sqlite3"
    app = make_live_app(database, engine_redis.url)  # the schema and the admin user
    (tmp_path / "engine").mkdir()
    port = free_port()
    engine = Engine({
        **os.environ,
        "DATABASE_URL": normalise_database_url(f"sqlite:///{database}"),
        "REDIS_URL": engine_redis.url,
        "SECRET_KEY": "live-dashboard",
        "API_TOKENS": TOKEN,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }, tmp_path / "engine")
    connection = redis_lib.Redis.from_url(engine_redis.url)
    base = f"http://127.0.0.1:{port}"
    try:
        engine.start("web")
        engine.start_engine(connection, workers=1, schedulers=1)
        wait_for(lambda: web_answers(base), 30, "the web process to answer", engine)
        yield Site(engine, base)
    finally:
        print(engine.logs())  # shown only when the test fails
        engine.stop_all()
        with app.app_context():
            db.engine.dispose()
        connection.close()


@pytest.fixture
def dashboard(browser: Any, site: Site) -> Iterator[Any]:
    with open_page(browser, site.base) as tab:
        log_in(tab)
        yield tab


def stat(page: Any, label: str) -> Any:
    return page.locator(".stat").filter(has=page.locator(".label", has_text=label)).locator(".value")


@pytest.mark.engine
def test_the_dashboard_follows_a_failure_and_the_scheduler_without_a_reload(dashboard: Any, site: Site) -> None:
    page = dashboard
    expect(page.locator("html")).to_have_attribute("data-live", "push", timeout=WAIT_MS)
    page.evaluate("() => { window.__sameDocument = true; }")
    failures = page.locator("[data-live-fragment=failures]")
    expect(failures).to_contain_text("No failed runs")
    expect(stat(page, "Failed")).to_have_text("0")
    expect(stat(page, "Runs, last 24 h")).to_have_text("0")
    expect(page.locator(".legend li").filter(has_text="Failed")).to_have_text("Failed (0)")
    chart_bars = page.locator(".chart rect.bar-failed")
    expect(chart_bars).to_have_count(0)
    banner = page.locator("[data-engine-alert]")
    expect(banner).to_be_hidden()

    site.add_failing_task("Live failure", "the partner API answered 502")
    expect(failures).to_contain_text("Live failure", timeout=WAIT_MS)
    expect(failures).to_contain_text("the partner API answered 502")
    expect(stat(page, "Failed")).to_have_text("1")
    expect(stat(page, "Runs, last 24 h")).to_have_text("1")
    expect(page.locator(".legend li").filter(has_text="Failed")).to_have_text("Failed (1)")
    expect(chart_bars).to_have_count(1)
    screenshot(page, "live-dashboard-failure")

    site.engine.stop(site.scheduler())
    expect(banner).to_be_visible(timeout=WAIT_MS)
    expect(banner).to_contain_text(SCHEDULER_DOWN)
    expect(page.locator("[data-engine-scheduler]")).to_contain_text("Not running")
    screenshot(page, "live-dashboard-scheduler-down")

    site.engine.start("scheduler")
    expect(banner).to_be_hidden(timeout=WAIT_MS)
    expect(page.locator("[data-engine-scheduler]")).to_contain_text("Running")
    assert page.evaluate("() => window.__sameDocument") is True  # never reloaded


@pytest.mark.engine
def test_without_event_source_the_dashboard_polls_and_still_follows(browser: Any, site: Site) -> None:
    with open_page(browser, site.base) as page:
        page.add_init_script("delete window.EventSource;")
        log_in(page)
        expect(page.locator("html")).to_have_attribute("data-live", "polling")
        page.evaluate("() => { window.__sameDocument = true; }")
        site.add_failing_task("Polled failure", "seen by polling")
        expect(page.locator("[data-live-fragment=failures]")).to_contain_text("Polled failure", timeout=WAIT_MS)
        expect(stat(page, "Failed")).to_have_text("1")
        site.engine.stop(site.scheduler())
        expect(page.locator("[data-engine-alert]")).to_contain_text(SCHEDULER_DOWN, timeout=WAIT_MS)
        assert page.evaluate("() => window.__sameDocument") is True
