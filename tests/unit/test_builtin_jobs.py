"""Tests for the built-in jobs, run through the registry as the executor would."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import jobs
from jobs import builtin, egress, registry
from jobs.builtin import HttpRequestError, ShellCommandError, UnexpectedStatusError
from jobs.registry import ArgsError, JobContext, JobDisabledError

SHELL_ENV = "ALLOW_SHELL_JOBS"
SLOW_RESPONSE_SECONDS = 2.0
SHORT_TIMEOUT_SECONDS = 0.2
SERVER_POLL_SECONDS = 0.05
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def _fields(name: str, args: Any) -> dict[str, str]:
    with pytest.raises(ArgsError) as caught:
        registry.validate_args(name, args)
    return caught.value.fields


def test_importing_jobs_registers_every_builtin_job():
    names = {spec.name for spec in jobs.all_jobs()}
    assert {"noop", "echo", "sleep", "fail", "http_request", "shell"} <= names


def test_every_builtin_job_has_a_description():
    assert all(spec.description for spec in jobs.all_jobs())


# --------------------------------------------------------------------------- noop, echo, sleep


def test_noop_returns_none():
    assert registry.run("noop", {}) is None


def test_echo_returns_the_message():
    assert registry.run("echo", {"message": "hi"}) == {"message": "hi"}


def test_echo_requires_a_message():
    assert _fields("echo", {}) == {"message": "required"}


def test_sleep_sleeps_for_the_given_seconds(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(builtin.time, "sleep", slept.append)
    assert registry.run("sleep", {"seconds": 1.5}) == {"slept_seconds": 1.5}
    assert slept == [1.5]


def test_sleep_really_sleeps_for_zero_seconds():
    assert registry.run("sleep", {"seconds": 0}) == {"slept_seconds": 0}


def test_sleep_rejects_negative_seconds():
    assert _fields("sleep", {"seconds": -1}) == {"seconds": "must not be negative"}


def test_sleep_rejects_more_than_a_day():
    assert _fields("sleep", {"seconds": 86_400.5}) == {"seconds": "must be at most 86400 seconds"}


def test_sleep_accepts_exactly_a_day():
    assert registry.validate_args("sleep", {"seconds": 86_400}) == {"seconds": 86_400}


# --------------------------------------------------------------------------- fail


def test_fail_hides_its_context_parameter():
    assert [p.name for p in registry.get("fail").parameters] == ["message", "times"]


@pytest.mark.parametrize("attempt", [1, 2, 10])
def test_fail_without_times_always_fails(attempt):
    with pytest.raises(RuntimeError, match="failed on purpose"):
        registry.run("fail", {}, context=JobContext(attempt=attempt))


def test_fail_uses_the_given_message():
    with pytest.raises(RuntimeError, match="^boom$"):
        registry.run("fail", {"message": "boom"})


def test_fail_once_fails_the_first_attempt_and_succeeds_the_second():
    with pytest.raises(RuntimeError):
        registry.run("fail", {"times": 1}, context=JobContext(attempt=1))
    assert registry.run("fail", {"times": 1}, context=JobContext(attempt=2)) == {"attempt": 2}


def test_fail_zero_times_succeeds_immediately():
    assert registry.run("fail", {"times": 0}) == {"attempt": 1}


def test_fail_rejects_negative_times():
    assert _fields("fail", {"times": -1}) == {"times": "must not be negative"}


# --------------------------------------------------------------------------- http_request


class _Handler(BaseHTTPRequestHandler):
    """Answer according to the request path: /status/<code>, /slow, /echo, /long."""

    received: list[dict[str, Any]] = []
    release = threading.Event()

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.received.append({"method": self.command, "headers": dict(self.headers), "body": body})
        if self.path == "/slow":
            self.release.wait(SLOW_RESPONSE_SECONDS)
        status, text = self._route()
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _route(self) -> tuple[int, str]:
        if self.path.startswith("/status/"):
            code = int(self.path.rsplit("/", 1)[1])
            return code, f"status {code}"
        if self.path == "/long":
            return 200, "é" * 5_000
        if self.path == "/nul":
            return 200, "a\x00b"
        return 200, "ok"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def server(monkeypatch) -> Iterator[str]:
    """Serve _Handler on 127.0.0.1 in a thread and return its base URL (loopback allowed for the test)."""
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(egress.ALLOW_ENV, "127.0.0.1")
    _Handler.received = []
    _Handler.release = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": SERVER_POLL_SECONDS}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        _Handler.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_http_request_returns_status_body_and_elapsed_time(server):
    result = registry.run("http_request", {"url": f"{server}/"})
    assert result["status_code"] == 200
    assert result["body"] == "ok"
    assert isinstance(result["elapsed_ms"], int) and result["elapsed_ms"] >= 0
    json.dumps(result)


def test_http_request_truncates_body_to_two_thousand_characters(server):
    result = registry.run("http_request", {"url": f"{server}/long"})
    assert result["body"] == "é" * 2_000


def test_http_request_body_with_nul_is_stored_with_a_replacement_character(server):
    assert registry.run("http_request", {"url": f"{server}/nul"})["body"] == "a\ufffdb"


def test_http_request_raises_on_server_error_naming_the_status(server):
    with pytest.raises(UnexpectedStatusError, match="500") as caught:
        registry.run("http_request", {"url": f"{server}/status/500"})
    assert caught.value.status_code == 500
    assert caught.value.body == "status 500"


def test_http_request_raises_on_not_found_by_default(server):
    with pytest.raises(UnexpectedStatusError, match="404"):
        registry.run("http_request", {"url": f"{server}/status/404"})


def test_http_request_accepts_expected_statuses(server):
    args = {"url": f"{server}/status/500", "expected_statuses": [500, 503]}
    assert registry.run("http_request", args)["status_code"] == 500


def test_http_request_rejects_success_outside_expected_statuses(server):
    with pytest.raises(UnexpectedStatusError, match="200"):
        registry.run("http_request", {"url": f"{server}/", "expected_statuses": [204]})


def test_http_request_sends_json_body_and_headers(server):
    args = {
        "url": f"{server}/echo",
        "method": "post",
        "headers": {"X-Token": "secret"},
        "json": {"hello": ["world", 1]},
    }
    registry.run("http_request", args)
    request = _Handler.received[-1]
    assert request["method"] == "POST"
    assert request["headers"]["X-Token"] == "secret"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"hello": ["world", 1]}


def test_http_request_times_out_with_a_clear_message(server):
    started = time.monotonic()
    args = {"url": f"{server}/slow", "timeout_seconds": SHORT_TIMEOUT_SECONDS}
    with pytest.raises(HttpRequestError, match="timed out after 0.2 seconds"):
        registry.run("http_request", args)
    assert time.monotonic() - started < SLOW_RESPONSE_SECONDS


def test_http_request_reports_connection_errors(monkeypatch):
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(egress.ALLOW_ENV, "127.0.0.1")
    closed = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(HttpRequestError, match="failed"):
        registry.run("http_request", {"url": closed, "timeout_seconds": 2})


def _closed_port() -> int:
    """Return a local port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "example.com/path",
        "http://",
        "http:///path-only",
        "https://exa mple.com/",
        "http://[::1",
        "http://example.com:99999/",
        "",
    ],
)
def test_http_request_rejects_urls_that_are_not_http_with_a_host(url):
    assert set(_fields("http_request", {"url": url})) == {"url"}


@pytest.mark.parametrize("url", ["http://example.com", "HTTPS://example.com/a?b=c", "http://[2001:4860:4860::8888]:8080/"])
def test_http_request_accepts_http_and_https_urls(url):
    assert registry.validate_args("http_request", {"url": url})["url"] == url


def test_http_request_fills_in_defaults():
    assert registry.validate_args("http_request", {"url": "http://example.com"}) == {
        "url": "http://example.com",
        "method": "GET",
        "headers": None,
        "json": None,
        "timeout_seconds": 30,
        "expected_statuses": None,
    }


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"method": "BREW"}, "method"),
        ({"headers": {"Bad Name": "x"}}, "headers"),
        ({"headers": {"X-Split": "a\r\nInjected: yes"}}, "headers"),
        ({"headers": {"X-Count": 1}}, "headers"),
        ({"json": {"x": float("nan")}}, "json"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": True}, "timeout_seconds"),
        ({"expected_statuses": []}, "expected_statuses"),
        ({"expected_statuses": [99]}, "expected_statuses"),
        ({"expected_statuses": [200, "201"]}, "expected_statuses"),
    ],
)
def test_http_request_rejects_bad_arguments(args, field):
    assert set(_fields("http_request", {"url": "http://example.com", **args})) == {field}


# --------------------------------------------------------------------------- shell


@pytest.fixture
def shell_enabled(monkeypatch) -> None:
    """Allow shell jobs for one test."""
    monkeypatch.setenv(SHELL_ENV, "true")


def test_shell_is_disabled_by_default(monkeypatch):
    monkeypatch.delenv(SHELL_ENV, raising=False)
    assert registry.is_enabled("shell") is False
    assert _fields("shell", {"command": "true"}) == {
        "job": "shell jobs are disabled; set ALLOW_SHELL_JOBS=true"
    }
    with pytest.raises(JobDisabledError, match="Shell jobs are disabled; set ALLOW_SHELL_JOBS=true"):
        registry.run("shell", {"command": "true"})


def test_shell_function_refuses_to_run_when_disabled(monkeypatch):
    monkeypatch.setenv(SHELL_ENV, "no")
    with pytest.raises(JobDisabledError):
        builtin.shell("true")


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_shell_is_enabled_by_env(monkeypatch, value):
    monkeypatch.setenv(SHELL_ENV, value)
    assert registry.is_enabled("shell") is True


def test_shell_returns_output(shell_enabled):
    result = registry.run("shell", {"command": "echo out; echo err >&2"})
    assert result == {"returncode": 0, "stdout": "out\n", "stderr": "err\n"}


def test_shell_output_with_nul_is_stored_with_replacement_characters(shell_enabled):
    """No database text column takes NUL (Postgres refuses it), so a run printing one must still be recorded."""
    assert registry.run("shell", {"command": "printf 'a\\0b'"})["stdout"] == "a\ufffdb"
    with pytest.raises(ShellCommandError) as caught:
        registry.run("shell", {"command": "printf 'c\\0d' >&2; exit 3"})
    assert str(caught.value) == "Command exited with code 3: c\ufffdd"
    assert caught.value.stderr == "c\ufffdd"


def test_shell_keeps_the_last_four_thousand_characters(shell_enabled):
    result = registry.run("shell", {"command": "printf 'a%.0s' $(seq 5000); printf END"})
    assert len(result["stdout"]) == 4_000
    assert result["stdout"].endswith("aEND")


def test_shell_nonzero_exit_raises_with_code_and_stderr(shell_enabled):
    with pytest.raises(ShellCommandError, match="exited with code 3: went wrong") as caught:
        registry.run("shell", {"command": "echo went wrong >&2; exit 3"})
    assert caught.value.returncode == 3


def test_shell_timeout_kills_the_command(shell_enabled):
    started = time.monotonic()
    with pytest.raises(ShellCommandError, match="timed out after 0.3 seconds"):
        registry.run("shell", {"command": "sleep 5 & sleep 5", "timeout_seconds": 0.3})
    assert time.monotonic() - started < 3


def test_shell_rejects_empty_command(shell_enabled):
    assert _fields("shell", {"command": "  "}) == {"command": "must not be empty"}


def test_shell_rejects_non_positive_timeout(shell_enabled):
    assert _fields("shell", {"command": "true", "timeout_seconds": 0}) == {
        "timeout_seconds": "must be greater than 0"
    }
