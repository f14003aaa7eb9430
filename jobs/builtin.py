"""Define the built-in jobs: noop, echo, sleep, fail, http_request and shell."""

from __future__ import annotations

import codecs
import json as json_module
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Any
from urllib.parse import urljoin, urlsplit

from jobs import egress
from jobs.registry import ArgsValidator, JobContext, JobDisabledError, env_flag, job

MAX_SLEEP_SECONDS = 86_400
MAX_HTTP_TIMEOUT_SECONDS = 3_600
MAX_SHELL_TIMEOUT_SECONDS = 86_400
HTTP_BODY_CHARS = 2_000
HTTP_BODY_READ_BYTES = 4 * HTTP_BODY_CHARS  # enough bytes for HTTP_BODY_CHARS UTF-8 characters
SHELL_OUTPUT_CHARS = 4_000
SHELL_ERROR_TAIL_CHARS = 1_000
SHELL_ENV = "ALLOW_SHELL_JOBS"
HTTP_SCHEMES = frozenset({"http", "https"})
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DEFAULT_EXPECTED_STATUSES = range(200, 400)
HTTP_STATUS_RANGE = range(100, 600)
USER_AGENT = "Chime/1 (+http_request job)"
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\U0010ffff]")


class HttpRequestError(RuntimeError):
    """Raised when an http_request job cannot complete its request."""


class EgressRefusedError(HttpRequestError):
    """Raised when an http_request job's URL, or a redirect, leads where it may not connect (jobs.egress)."""


class UnexpectedStatusError(HttpRequestError):
    """Raised when an http_request job receives a status it was not told to expect."""

    def __init__(self, message: str, status_code: int, body: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class ShellCommandError(RuntimeError):
    """Raised when a shell job exits nonzero or times out."""

    def __init__(self, message: str, returncode: int | None, stdout: str, stderr: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


# --------------------------------------------------------------------------- checks

Check = Callable[[Any], str | None]


def _field_checks(**checks: Check) -> ArgsValidator:
    """Build a validate hook that runs each check on its argument if it passed type checks."""

    def validate(args: dict[str, Any]) -> dict[str, str]:
        reasons = {name: check(args[name]) for name, check in checks.items() if name in args}
        return {name: reason for name, reason in reasons.items() if reason}

    return validate


def _seconds_check(max_seconds: int, *, allow_zero: bool) -> Check:
    """Build a check that keeps a duration within 0 (or above 0) .. ``max_seconds``."""

    def check(value: float) -> str | None:
        if value < 0 or (value == 0 and not allow_zero):
            return "must not be negative" if allow_zero else "must be greater than 0"
        if value > max_seconds:
            return f"must be at most {max_seconds} seconds"
        return None

    return check


def _non_negative_check(value: int | None) -> str | None:
    """Reject negative integers."""
    return "must not be negative" if value is not None and value < 0 else None


def _non_blank_check(value: str) -> str | None:
    """Reject empty or whitespace-only strings."""
    return None if value.strip() else "must not be empty"


# --------------------------------------------------------------------------- trivial jobs


@job("noop")
def noop() -> None:
    """Do nothing and succeed."""
    return None


@job("echo")
def echo(message: str) -> dict[str, Any]:
    """Return the given message."""
    return {"message": message}


@job("sleep", validate=_field_checks(seconds=_seconds_check(MAX_SLEEP_SECONDS, allow_zero=True)))
def sleep(seconds: float) -> dict[str, Any]:
    """Sleep for the given number of seconds."""
    time.sleep(seconds)
    return {"slept_seconds": seconds}


@job("fail", validate=_field_checks(times=_non_negative_check))
def fail(
    message: str = "failed on purpose",
    times: int | None = None,
    *,
    context: JobContext | None = None,
) -> dict[str, Any]:
    """Fail with the given message for the first `times` attempts (always when unset)."""
    attempt = (context or JobContext()).attempt
    if times is None or attempt <= times:
        raise RuntimeError(message)
    return {"attempt": attempt}


# --------------------------------------------------------------------------- http_request


def _url_error(url: str) -> str | None:
    """Return why ``url`` is not an absolute http(s) URL with a host Chime may reach, or None.

    Only what is known without DNS: a literal address that jobs.egress refuses. Names are checked when
    the job runs, after resolution.
    """
    reason = _url_shape_error(url)
    if reason is not None:
        return reason
    try:
        return egress.url_refusal(url, egress.allow_list_from_env())
    except ValueError as error:  # CHIME_EGRESS_ALLOW is malformed
        return str(error)


def _url_shape_error(url: str) -> str | None:
    """Return why ``url`` is not an absolute http(s) URL with a host, or None."""
    if _URL_FORBIDDEN.search(url):
        return "must not contain spaces, control or non-ASCII characters (percent-encode them)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for an invalid port
    except ValueError:
        return "must be a valid URL"
    if parts.scheme.lower() not in HTTP_SCHEMES:
        return "must be an http or https URL"
    if not parts.hostname:
        return "must include a host"
    return None


def _method_error(method: str) -> str | None:
    """Return why ``method`` is not a supported HTTP method, or None."""
    if method.upper() in HTTP_METHODS:
        return None
    return f"must be one of {', '.join(sorted(HTTP_METHODS))}"


def _headers_error(headers: dict[str, str] | None) -> str | None:
    """Return why the headers cannot be sent, or None."""
    for name, value in (headers or {}).items():
        if not _HEADER_NAME.fullmatch(name):
            return f"header name {name!r} is not a valid HTTP token"
        if any(char in "\r\n\0" or ord(char) > 0xFF for char in value):
            return f"header {name!r} must contain only Latin-1 characters without line breaks"
    return None


def _statuses_error(statuses: list[int] | None) -> str | None:
    """Return why the expected statuses are unusable, or None."""
    if statuses is None:
        return None
    if not statuses:
        return "must not be empty"
    if any(status not in HTTP_STATUS_RANGE for status in statuses):
        return "must contain only HTTP status codes (100-599)"
    return None


def _json_body_error(value: Any) -> str | None:
    """Return why ``value`` cannot be sent as a standard JSON body, or None."""
    try:
        json_module.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return "must be JSON-serialisable without NaN or infinity"
    return None


_validate_http_request = _field_checks(
    url=_url_error,
    method=_method_error,
    headers=_headers_error,
    json=_json_body_error,
    timeout_seconds=_seconds_check(MAX_HTTP_TIMEOUT_SECONDS, allow_zero=False),
    expected_statuses=_statuses_error,
)


@job("http_request", validate=_validate_http_request)
def http_request(
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    json: Any = None,
    timeout_seconds: float = 30,
    expected_statuses: list[int] | None = None,
) -> dict[str, Any]:
    """Send an HTTP request and fail unless the response status is expected."""
    request = _build_request(url, method.upper(), headers or {}, json)
    started = time.monotonic()
    status_code, body = _send(request, timeout_seconds, _allow_list())
    elapsed_ms = int((time.monotonic() - started) * 1000)
    expected = expected_statuses or DEFAULT_EXPECTED_STATUSES
    if status_code not in expected:
        raise UnexpectedStatusError(
            f"HTTP {request.method} {url} returned unexpected status {status_code} "
            f"(expected {_describe_statuses(expected_statuses)})",
            status_code,
            body,
        )
    return {"status_code": status_code, "body": body, "elapsed_ms": elapsed_ms}


@dataclass(frozen=True)
class _Request:
    url: str
    method: str
    headers: dict[str, str]
    data: bytes | None


def _build_request(url: str, method: str, headers: dict[str, str], body: Any) -> _Request:
    """Build the request, encoding ``body`` as JSON when given."""
    data = None
    all_headers = {"User-Agent": USER_AGENT, **headers}
    if body is not None:
        data = json_module.dumps(body).encode("utf-8")
        if not any(name.lower() == "content-type" for name in all_headers):
            all_headers["Content-Type"] = "application/json"
    return _Request(url, method, all_headers, data)


def _allow_list() -> egress.AllowList:
    try:
        return egress.allow_list_from_env()
    except ValueError as error:
        raise HttpRequestError(str(error)) from None


def _send(request: _Request, timeout_seconds: float, allow: egress.AllowList) -> tuple[int, str]:
    """Send ``request``, following up to MAX_REDIRECTS redirects; vet every hop's addresses first."""
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            target = egress.vet(request.url, allow)
        except egress.EgressError as error:
            raise EgressRefusedError(str(error)) from None
        except OSError as error:
            raise HttpRequestError(f"HTTP {request.method} {request.url} failed: {error}") from None
        status, location, body = _exchange(target, request, timeout_seconds)
        if status not in REDIRECT_STATUSES or not location:
            return status, body
        request = _redirected(request, status, location)
    raise HttpRequestError(f"HTTP {request.method} {request.url}: stopped after {MAX_REDIRECTS} redirects")


def _redirected(request: _Request, status: int, location: str) -> _Request:
    """The request to send after a redirect (RFC 9110 §15.4); refused unless it goes to http or https."""
    url = urljoin(request.url, location)
    if urlsplit(url).scheme.lower() not in HTTP_SCHEMES:
        raise EgressRefusedError(f"refused: {request.url} redirects to {url}; only http and https are followed")
    reason = _url_shape_error(url)
    if reason is not None:
        raise HttpRequestError(f"HTTP {request.method} {request.url} redirects to an unusable URL ({reason})")
    method, data, headers = request.method, request.data, dict(request.headers)
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, data = "GET", None
        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
    if _origin(url) != _origin(request.url):  # credentials are for the origin they were written for
        headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
    return _Request(url, method, headers, data)


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.hostname, parts.port


def _exchange(target: egress.Target, request: _Request, timeout_seconds: float) -> tuple[int, str | None, str]:
    """Send one request to the vetted addresses only; return the status, Location header and body."""
    label = f"HTTP {request.method} {request.url}"
    connection = _PinnedConnection.open(target, timeout_seconds)
    try:
        connection.request(request.method, target.path, body=request.data, headers=request.headers)
        response = connection.getresponse()
        return response.status, response.getheader("Location"), _read_body(response)
    except TimeoutError as exc:
        raise _timeout_error(label, timeout_seconds) from exc
    except (HTTPException, OSError, ValueError) as exc:
        raise HttpRequestError(f"{label} failed: {exc}") from exc
    finally:
        connection.close()


class _PinnedConnection:
    """http.client connections that keep the URL's host for Host, SNI and certificate checks but connect
    only to the addresses vetted for it, so a second DNS answer (rebinding) cannot change the peer."""

    @staticmethod
    def open(target: egress.Target, timeout_seconds: float) -> HTTPConnection:
        cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        connection = cls(target.host, target.port, timeout=timeout_seconds)
        connection.addresses = target.addresses
        return connection


def _connect_pinned(connection: Any) -> socket.socket:
    """Connect to the first vetted address that answers."""
    last_error: OSError | None = None
    for address in connection.addresses:
        try:
            return socket.create_connection((str(address), connection.port), connection.timeout)
        except TimeoutError:
            raise
        except OSError as error:
            last_error = error
    raise last_error or OSError("no address to connect to")


class _PinnedHTTP(HTTPConnection):
    addresses: tuple[egress.Address, ...] = ()

    def connect(self) -> None:
        self.sock = _connect_pinned(self)


class _PinnedHTTPS(HTTPSConnection):
    addresses: tuple[egress.Address, ...] = ()

    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)

    def connect(self) -> None:
        self.sock = self._tls.wrap_socket(_connect_pinned(self), server_hostname=self.host)


def _timeout_error(label: str, timeout_seconds: float) -> HttpRequestError:
    """Build the error for a request that timed out."""
    return HttpRequestError(f"{label} timed out after {timeout_seconds} seconds")


def _read_body(response: Any) -> str:
    """Read and decode at most HTTP_BODY_CHARS characters of the response body."""
    raw = response.read(HTTP_BODY_READ_BYTES)
    charset = response.headers.get_content_charset() or "utf-8"
    try:
        decoder = codecs.getincrementaldecoder(charset)(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return storable(decoder.decode(raw, final=False)[:HTTP_BODY_CHARS])


def storable(text: str) -> str:
    """Replace NUL, which no database text column takes, with U+FFFD (decoding already replaced the rest)."""
    return text.replace("\x00", "\ufffd")


def _describe_statuses(expected_statuses: list[int] | None) -> str:
    """Describe the statuses an http_request job accepts."""
    if expected_statuses is None:
        return f"{DEFAULT_EXPECTED_STATUSES.start}-{DEFAULT_EXPECTED_STATUSES.stop - 1}"
    return ", ".join(str(status) for status in expected_statuses)


# --------------------------------------------------------------------------- shell


_validate_shell = _field_checks(
    command=_non_blank_check,
    timeout_seconds=_seconds_check(MAX_SHELL_TIMEOUT_SECONDS, allow_zero=False),
)


@job("shell", validate=_validate_shell, enabled_env=SHELL_ENV)
def shell(command: str, timeout_seconds: float = 300) -> dict[str, Any]:
    """Run a shell command and fail if it exits nonzero (requires ALLOW_SHELL_JOBS=true)."""
    if not env_flag(SHELL_ENV):
        raise JobDisabledError(f"Shell jobs are disabled; set {SHELL_ENV}=true to enable them")
    returncode, stdout, stderr = _run_command(command, timeout_seconds)
    stdout, stderr = storable(stdout[-SHELL_OUTPUT_CHARS:]), storable(stderr[-SHELL_OUTPUT_CHARS:])
    if returncode != 0:
        raise ShellCommandError(_exit_message(returncode, stderr), returncode, stdout, stderr)
    return {"returncode": returncode, "stdout": stdout, "stderr": stderr}


def _run_command(command: str, timeout_seconds: float) -> tuple[int, str, str]:
    """Run ``command`` in its own process group, killing the whole group on timeout."""
    process = subprocess.Popen(
        command,
        shell=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        raise ShellCommandError(
            f"Command timed out after {timeout_seconds} seconds",
            None,
            stdout[-SHELL_OUTPUT_CHARS:],
            stderr[-SHELL_OUTPUT_CHARS:],
        ) from None
    except BaseException:  # interrupted from outside (the task's timeout, an operator's stop): no orphans
        _kill_group(process)
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        raise
    return process.returncode, stdout, stderr


def _kill_group(process: subprocess.Popen[str]) -> None:
    """Kill the process group started for ``process``."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _exit_message(returncode: int, stderr: str) -> str:
    """Describe a failed command with its exit code and the tail of its stderr."""
    if returncode < 0:
        how = f"was killed by signal {-returncode}"
    else:
        how = f"exited with code {returncode}"
    tail = stderr[-SHELL_ERROR_TAIL_CHARS:].strip()
    return f"Command {how}: {tail}" if tail else f"Command {how}"
