"""Talking to a real web process over HTTP with the standard library: API calls with a token, and a
browser's signed-in session cookie (the login form with its CSRF token)."""
from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

TIMEOUT_SECONDS = 30  # generous: these check that the server answers, never how fast


def call(base: str, method: str, path: str, *, token: str | None = None, body: Any = None,
         timeout: float = TIMEOUT_SECONDS) -> tuple[int, Any]:
    """One request; (status, JSON body or text)."""
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def web_answers(base: str) -> bool:
    """True once GET /api/health/ answers 200 (the web process is up and sees the engine)."""
    try:
        return call(base, "GET", "/api/health/", timeout=2)[0] == 200
    except OSError:
        return False


def session_cookie(base: str, username: str, password: str) -> str:
    """Sign in through the login form as a browser does; return the `Cookie` header of the session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/login", timeout=TIMEOUT_SECONDS) as response:
        token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode()).group(1)
    form = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": token}).encode()
    with opener.open(f"{base}/login", data=form, timeout=TIMEOUT_SECONDS) as response:
        assert response.status == 200 and not response.url.endswith("/login"), "the sign-in was refused"
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)
