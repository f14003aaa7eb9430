"""Signing in and out, and the slow-down of repeated failures."""
from __future__ import annotations

from typing import Any

from tests.admin.conftest import PASSWORD, USERNAME, AdminClient, fresh_csrf, sign_in
from webapp.admin import throttle
from webapp.auth import create_user


def test_login_with_the_right_password_goes_to_next(app: Any, client: Any) -> None:
    create_user(USERNAME, PASSWORD)
    response = sign_in(client, next_path="/tasks?status=FAILED")
    assert response.status_code == 302
    assert response.headers["Location"] == "/tasks?status=FAILED"
    assert client.get("/tasks").status_code == 200


def test_login_never_redirects_off_site(app: Any, client: Any) -> None:
    create_user(USERNAME, PASSWORD)
    for target in ("//evil.example", "https://evil.example/", "/\\evil.example"):
        response = sign_in(client, next_path=target)
        assert response.headers["Location"] == "/", target
        client.post("/logout", data={"csrf_token": fresh_csrf(client, "/")})


def test_wrong_password_is_401_and_keeps_the_user_name(app: Any, client: Any, no_login_delay: list[float]) -> None:
    create_user(USERNAME, PASSWORD)
    response = sign_in(client, password="wrong")
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "Wrong user name or password." in html
    assert f'value="{USERNAME}"' in html
    assert no_login_delay == [throttle.BASE_DELAY_SECONDS]
    assert client.get("/").status_code == 302  # still anonymous


def test_unknown_user_is_401_too(app: Any, client: Any) -> None:
    response = sign_in(client, username="nobody", password="whatever")
    assert response.status_code == 401


def test_repeated_failures_are_slowed_down_then_refused(app: Any, client: Any, no_login_delay: list[float],
                                                        redis_client: Any) -> None:
    create_user(USERNAME, PASSWORD)
    for _ in range(throttle.MAX_FAILURES):
        assert sign_in(client, password="wrong").status_code == 401
    assert no_login_delay == [0.25, 0.5, 1.0, 2.0, 2.0]  # growing, capped
    refused = sign_in(client)  # even the right password, until the window ends
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 0 < retry_after <= throttle.WINDOW_SECONDS
    assert f"try again in {retry_after} s" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302
    # another user name from the same address is not locked out
    create_user("other", PASSWORD)
    assert sign_in(client, username="other").status_code == 302
    # the lockout ends with the counter's expiry
    for key in redis_client.scan_iter(throttle.KEY_PREFIX + "*"):
        redis_client.delete(key)
    assert sign_in(client).status_code == 302


def test_a_successful_login_resets_the_counter(app: Any, client: Any) -> None:
    create_user(USERNAME, PASSWORD)
    for _ in range(throttle.MAX_FAILURES - 1):
        sign_in(client, password="wrong")
    assert sign_in(client).status_code == 302
    client.post("/logout", data={"csrf_token": fresh_csrf(client, "/")})
    for _ in range(throttle.MAX_FAILURES - 1):
        assert sign_in(client, password="wrong").status_code == 401
    assert sign_in(client).status_code == 302


def test_failure_counters_expire(app: Any, client: Any, redis_client: Any) -> None:
    sign_in(client, username="someone", password="wrong")
    keys = list(redis_client.scan_iter(throttle.KEY_PREFIX + "*"))
    assert len(keys) == 2  # per user name + address, and per address
    assert all(0 < redis_client.ttl(key) <= throttle.WINDOW_SECONDS for key in keys)
    assert not any(b"someone" in key for key in keys)  # user names are hashed


def test_login_works_when_redis_is_down(app: Any, client: Any) -> None:
    create_user(USERNAME, PASSWORD)
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    app.extensions["redis"] = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    assert sign_in(client, password="wrong").status_code == 401
    assert sign_in(client).status_code == 302


def test_logout_ends_the_session(admin: AdminClient) -> None:
    response = admin.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert admin.get("/").status_code == 302


def test_delay_doubles_up_to_the_cap() -> None:
    assert [throttle.delay_for(n) for n in range(7)] == [0, 0.25, 0.5, 1, 2, 2, 2]
