"""Signing in and out: where `next` may lead, sessions the server can revoke, and the throttle."""
from __future__ import annotations

import time
from typing import Any

import pytest

from tests.admin.conftest import PASSWORD, USERNAME, AdminClient, fresh_csrf, sign_in
from tests.conftest import AUTH, app_on
from webapp.admin import throttle
from webapp.auth import create_user, set_active, set_password
from chime.extensions import db
from chime.models import User

PER_USER_AND_CLIENT, PER_CLIENT, PER_USER = (limit.failures for limit in throttle.LOGIN_LIMITS)


def test_login_with_the_right_password_goes_to_next(app: Any, client: Any) -> None:
    create_user(USERNAME, PASSWORD)
    response = sign_in(client, next_path="/tasks?status=FAILED")
    assert response.status_code == 302
    assert response.headers["Location"] == "/tasks?status=FAILED"
    assert client.get("/tasks").status_code == 200


# What a browser makes of each target (WHATWG URL: tabs and newlines are removed anywhere,
# leading controls and spaces trimmed, '\' read as '/'): every one leaves the site.
OFF_SITE = {
    "protocol-relative": "//evil.example",
    "absolute": "https://evil.example/",
    "backslash": "/\\evil.example",
    "encoded tab": "/%09/evil.example",
    "encoded newline": "/%0a/evil.example",
    "encoded carriage return": "/%0d/evil.example",
    "leading tab": "%09//evil.example",
    "leading space": "%20//evil.example",
    "encoded backslash": "/%5Cevil.example",
    "scheme only": "javascript:alert(1)",
    "no slash": "evil.example",
    "triple slash": "///evil.example",
}


@pytest.mark.parametrize("target", OFF_SITE.values(), ids=OFF_SITE.keys())
def test_login_never_redirects_off_site(app: Any, client: Any, target: str) -> None:
    create_user(USERNAME, PASSWORD)
    response = sign_in(client, next_path=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/", target


def test_login_follows_a_same_site_path_with_a_query(app: Any, client: Any) -> None:
    create_user(USERNAME, PASSWORD)
    response = sign_in(client, next_path="/logs?status%3DFAILED")
    assert response.headers["Location"] == "/logs?status=FAILED"


def test_wrong_password_is_401_and_keeps_the_user_name(app: Any, client: Any) -> None:
    create_user(USERNAME, PASSWORD)
    response = sign_in(client, password="wrong")
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "Wrong user name or password." in html
    assert f'value="{USERNAME}"' in html
    assert client.get("/").status_code == 302  # still anonymous


def test_unknown_user_is_401_too(app: Any, client: Any) -> None:
    response = sign_in(client, username="nobody", password="whatever")
    assert response.status_code == 401


# ---------------------------------------------------------------------------- sessions


def cookie_of(client: Any) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def replay(client: Any, cookie: str) -> None:
    client.set_cookie("session", cookie)


def test_logout_ends_the_session(admin: AdminClient) -> None:
    response = admin.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert admin.get("/").status_code == 302


def test_a_cookie_replayed_after_logout_is_refused(admin: AdminClient) -> None:
    copied = cookie_of(admin.client)
    assert admin.get("/").status_code == 200
    admin.post("/logout")
    replay(admin.client, copied)
    response = admin.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert admin.get("/api/tasks/").status_code == 401  # the API's session reads too
    assert admin.get("/metrics").status_code == 401


def test_logout_in_one_browser_ends_the_other_sessions_of_the_user(app: Any, admin: AdminClient) -> None:
    other_browser = app.test_client()
    assert sign_in(other_browser).status_code == 302
    assert other_browser.get("/").status_code == 200
    admin.post("/logout")
    assert other_browser.get("/").status_code == 302


def refused_everywhere(client: Any) -> bool:
    """The session reaches no admin page, no API read and no /metrics."""
    return (client.get("/").status_code == 302 and client.get("/tasks").status_code == 302
            and client.get("/api/tasks/").status_code == 401 and client.get("/metrics").status_code == 401)


def test_the_session_reads_the_api_and_metrics_while_valid(admin: AdminClient) -> None:
    assert admin.get("/api/tasks/").status_code == 200
    assert admin.get("/metrics").status_code == 200


def test_a_deleted_users_cookie_is_refused_everywhere(admin: AdminClient) -> None:
    db.session.delete(db.session.query(User).filter_by(username=USERNAME).one())
    db.session.commit()
    assert refused_everywhere(admin.client)


def test_a_disabled_users_cookie_is_refused_everywhere_and_the_user_cannot_sign_in(admin: AdminClient) -> None:
    copied = cookie_of(admin.client)
    set_active(db.session.query(User).filter_by(username=USERNAME).one(), False)
    assert refused_everywhere(admin.client)
    replay(admin.client, copied)
    assert refused_everywhere(admin.client)
    assert sign_in(admin.client).status_code == 401


def test_a_password_change_ends_the_users_sessions(admin: AdminClient) -> None:
    set_password(db.session.query(User).filter_by(username=USERNAME).one(), "a new password")
    assert refused_everywhere(admin.client)
    assert sign_in(admin.client, password="a new password").status_code == 302


def test_the_users_commands_disable_enable_and_change_passwords(app: Any, admin: AdminClient) -> None:
    create_user("second-admin", PASSWORD)  # the last active admin cannot be disabled
    runner = app.test_cli_runner()
    disabled = runner.invoke(args=["users", "disable", USERNAME])
    assert disabled.exit_code == 0, disabled.output
    assert refused_everywhere(admin.client)
    assert sign_in(admin.client).status_code == 401
    assert "disabled" in runner.invoke(args=["users", "list"]).output
    assert runner.invoke(args=["users", "enable", USERNAME]).exit_code == 0
    assert sign_in(admin.client).status_code == 302
    changed = runner.invoke(args=["users", "set-password", USERNAME, "--password", "another one"])
    assert changed.exit_code == 0, changed.output
    assert refused_everywhere(admin.client)
    assert sign_in(admin.client, password="another one").status_code == 302
    unknown = runner.invoke(args=["users", "disable", "nobody"])
    assert unknown.exit_code != 0 and "No user named 'nobody'" in unknown.output


def test_the_bearer_token_still_works_without_a_session(app: Any, client: Any) -> None:
    assert client.get("/api/tasks/", headers=AUTH).status_code == 200
    assert client.get("/metrics", headers=AUTH).status_code == 200


def session_cookie_header(app: Any) -> str:
    create_user(USERNAME, PASSWORD)
    client = app.test_client()
    response = sign_in(client)
    assert response.status_code == 302
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))


def test_the_session_cookie_is_secure_httponly_and_lax_in_production(
        database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIME_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a production secret")
    with app_on(database_url, redis_url, SECRET_KEY="a production secret") as app:
        cookie = session_cookie_header(app).lower()
    assert "; secure" in cookie and "; httponly" in cookie and "samesite=lax" in cookie


def test_the_session_cookie_is_not_secure_in_development(app: Any) -> None:
    assert "; secure" not in session_cookie_header(app).lower()


# ---------------------------------------------------------------------------- throttling


@pytest.fixture
def sleeping_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any time.sleep during the test is a failure: the throttle must refuse, not wait."""
    def refuse_to_sleep(seconds: float) -> None:
        raise AssertionError(f"time.sleep({seconds}) was called")

    monkeypatch.setattr(time, "sleep", refuse_to_sleep)


def test_repeated_failures_are_refused_with_429_without_sleeping(app: Any, client: Any, sleeping_fails: None) -> None:
    create_user(USERNAME, PASSWORD)
    for _ in range(PER_USER_AND_CLIENT):
        assert sign_in(client, password="wrong").status_code == 401
    refused = sign_in(client)  # even the right password, until the window ends
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 0 < retry_after <= throttle.WINDOW_SECONDS
    assert f"try again in {retry_after} s" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_one_users_lockout_does_not_lock_out_other_users(app: Any, client: Any, sleeping_fails: None) -> None:
    create_user(USERNAME, PASSWORD)
    create_user("other", PASSWORD)
    for _ in range(PER_USER_AND_CLIENT):
        sign_in(client, password="wrong")
    assert sign_in(client).status_code == 429
    assert sign_in(client, username="other").status_code == 302


def client_at(app: Any, address: str) -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_a_user_name_is_locked_after_failures_from_many_clients(app: Any, sleeping_fails: None) -> None:
    create_user(USERNAME, PASSWORD)
    for attempt in range(PER_USER):
        assert sign_in(client_at(app, f"10.0.{attempt // 250}.{attempt % 250 + 1}"), password="wrong").status_code == 401
    assert sign_in(client_at(app, "10.9.9.9")).status_code == 429


def test_the_lockout_ends_when_the_failures_leave_the_window(app: Any, client: Any, redis_client: Any) -> None:
    create_user("margaret", PASSWORD)
    for _ in range(PER_USER_AND_CLIENT):
        sign_in(client, username="margaret", password="wrong")
    assert sign_in(client, username="margaret").status_code == 429
    keys = list(redis_client.scan_iter(throttle.KEY_PREFIX + "*"))
    assert keys and all(0 < redis_client.ttl(key) <= throttle.WINDOW_SECONDS for key in keys)
    assert not any(b"margaret" in key for key in keys)  # user names are hashed
    redis_client.delete(*keys)  # what the window's expiry does
    assert sign_in(client, username="margaret").status_code == 302


def test_a_successful_login_forgets_the_failures(app: Any, client: Any) -> None:
    create_user(USERNAME, PASSWORD)
    for _ in range(PER_USER_AND_CLIENT - 1):
        sign_in(client, password="wrong")
    assert sign_in(client).status_code == 302
    client.post("/logout", data={"csrf_token": fresh_csrf(client, "/")})
    for _ in range(PER_USER_AND_CLIENT - 1):
        assert sign_in(client, password="wrong").status_code == 401
    assert sign_in(client).status_code == 302


def fail_with_many_names(client: Any, count: int, forwarded_for: str) -> list[int]:
    headers = {"X-Forwarded-For": forwarded_for}
    statuses = []
    for attempt in range(count):
        token = fresh_csrf(client)
        response = client.post("/login", headers=headers,
                               data={"username": f"guess{attempt}", "password": "x", "csrf_token": token})
        statuses.append(response.status_code)
    return statuses


def test_behind_a_configured_proxy_each_forwarded_client_is_counted_apart(
        database_url: str, redis_url: str, sleeping_fails: None) -> None:
    with app_on(database_url, redis_url, PROXY_FIX_X_FOR=1) as app:
        client = app.test_client()  # every request comes from the proxy's address
        assert fail_with_many_names(client, PER_CLIENT, "203.0.113.7") == [401] * PER_CLIENT
        assert fail_with_many_names(client, 1, "203.0.113.7") == [429]
        assert fail_with_many_names(client, 1, "198.51.100.9") == [401]


def test_without_proxy_depth_the_forwarded_header_is_ignored(app: Any, client: Any, sleeping_fails: None) -> None:
    assert fail_with_many_names(client, PER_CLIENT, "203.0.113.7") == [401] * PER_CLIENT
    # a forged X-Forwarded-For does not buy a fresh counter
    assert fail_with_many_names(client, 1, "198.51.100.9") == [429]


def test_login_works_and_is_throttled_when_redis_is_down(database_url: str, redis_url: str) -> None:
    with app_on(database_url, "redis://127.0.0.1:1/0") as app:
        create_user(USERNAME, PASSWORD)
        client = app.test_client()
        for _ in range(PER_USER_AND_CLIENT):
            assert sign_in(client, password="wrong").status_code == 401
        assert sign_in(client).status_code == 429  # counted in the process's memory meanwhile
        assert sign_in(client, username="nobody-else", password="x").status_code == 401
