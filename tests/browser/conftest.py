"""End-to-end fixtures: the real app served over HTTP and a headless Debian Chromium.

`start_live_server(app)` serves any app object on a free port in a thread and is the
helper to reuse for scenarios that also need the engine's worker and scheduler.
A missing chromium or playwright is a loud skip locally and a failure when CI is set.
"""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import test_config
from tests.services import RedisServer, missing_service
from webapp import create_app
from webapp.auth import create_user
from chime.extensions import db

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
USERNAME = "admin"
PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@dataclass
class LiveServer:
    """A running app: `url` to browse, `app_context()` to read and write its database."""

    app: Any
    url: str
    server: BaseWSGIServer
    thread: threading.Thread
    extra: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def app_context(self) -> Iterator[None]:
        with self.app.app_context():
            try:
                yield
            finally:
                db.session.remove()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_live_server(app: Any, host: str = "127.0.0.1") -> LiveServer:
    """Serve `app` with werkzeug on a free port in a daemon thread (stop() when done)."""
    server = make_server(host, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="chime-live-server", daemon=True)
    thread.start()
    return LiveServer(app=app, url=f"http://{host}:{server.server_port}", server=server, thread=thread)


def make_live_app(database_path: Path, redis_url: str, **extra: Any) -> Any:
    """A fresh app on a new SQLite database with one admin user."""
    redis_lib.Redis.from_url(redis_url).flushall()
    app = create_app(test_config(f"sqlite:///{database_path}", redis_url, **extra))
    with app.app_context():
        db.create_all()
        create_user(USERNAME, PASSWORD)
        db.session.remove()
    return app


def find_chromium() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured and os.access(configured, os.X_OK):
        return configured
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_service("BROWSER TESTS SKIPPED: the playwright package is not installed "
                        "(pip install -r requirements-dev.txt)")
    executable = find_chromium()
    if executable is None:
        missing_service("BROWSER TESTS SKIPPED: no chromium found at /usr/bin/chromium "
                        "(apt-get install chromium, or set CHROMIUM_PATH)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def live_server(tmp_path: Path, redis_server: RedisServer) -> Iterator[LiveServer]:
    server = start_live_server(make_live_app(tmp_path / "chime.sqlite3", redis_server.url))
    yield server
    server.stop()
    with server.app.app_context():
        db.engine.dispose()


@contextmanager
def open_page(browser: Any, base_url: str) -> Iterator[Any]:
    """A desktop tab in Berlin's zone on `base_url`; fails the test if the page raised a JavaScript error."""
    context = browser.new_context(viewport=DESKTOP, timezone_id="Europe/Berlin", locale="en-GB", base_url=base_url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    with open_page(browser, live_server.url) as tab:
        yield tab


def log_in(page: Any, username: str = USERNAME, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def screenshot(page: Any, name: str, *, docs: bool = False) -> Path:
    """Save a full-page screenshot to test-artifacts/screenshots (and docs/screenshots when asked)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("CHIME_UPDATE_DOCS_SCREENSHOTS") == "1":  # never dirty the tree by default
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")
    return path
