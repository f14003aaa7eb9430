"""Every API route but health needs a valid bearer token."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

import webapp.auth
from tests.conftest import ApiClient, app_on
from webapp.auth import create_token, create_user, hash_token
from chime.config import ConfigError, proxy_depth, public_url, web_settings
from chime.extensions import db
from chime.models import ApiToken

ROUTES = [("GET", "/api/tasks/"), ("POST", "/api/tasks/"), ("GET", "/api/tasks/1/"), ("PUT", "/api/tasks/1/"),
          ("PATCH", "/api/tasks/1/"), ("DELETE", "/api/tasks/1/"), ("POST", "/api/tasks/1/toggle/"),
          ("POST", "/api/tasks/1/run/"), ("GET", "/api/tasks/1/logs/"), ("GET", "/api/logs/"),
          ("GET", "/api/logs/1/"), ("GET", "/api/notifications/"), ("POST", "/api/notifications/1/read/"),
          ("POST", "/api/notifications/read-all/"), ("GET", "/api/stats/"), ("GET", "/api/jobs/"),
          ("GET", "/api/cron/preview/?cron=@daily"), ("GET", "/api/openapi.json")]


@pytest.mark.parametrize("method,path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", "Bearer "], ids=["none", "wrong", "basic", "empty"])
def test_api_route_without_a_valid_token_is_a_401(client: Any, method: str, path: str, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.open(path, method=method, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


@pytest.mark.parametrize("path,status", [("/api/health/", 503), ("/api/health/ready/", 200),
                                         ("/api/health/live/", 200)])
def test_health_needs_no_token(client: Any, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status  # 503: no scheduler or worker runs here, and /api/health/ says so
    assert response.get_json()["status"] == ("ok" if status == 200 else "unavailable")


def test_token_created_by_the_cli_works_and_is_stored_hashed(app: Any, client: Any) -> None:
    create_user("admin", "a long enough password")  # a token belongs to a user: the only admin by default
    result = app.test_cli_runner().invoke(args=["create-token", "--name", "ci"])
    token = result.output.strip()
    assert result.exit_code == 0 and token.startswith("chime_")
    stored = db.session.query(ApiToken).one()
    assert stored.token_hash == hash_token(token) and token not in stored.token_hash
    assert client.get("/api/tasks/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_created_token_is_random_each_time(app: Any) -> None:
    assert create_token("a") != create_token("b")


# ---------------------------------------------------------------------------- links and the Host header

FORGED_HOST = {"Host": "evil.example"}


def add_tasks(api: Any, count: int) -> None:
    for n in range(count):
        assert api.post("/api/tasks/", {"name": f"t{n}", "job": "noop", "schedule_type": "INTERVAL",
                                        "interval_seconds": 60, "enabled": False}).status_code == 201


def test_page_links_and_location_do_not_trust_a_forged_host_header(api: Any) -> None:
    created = api.post("/api/tasks/", {"name": "first", "job": "noop", "schedule_type": "INTERVAL",
                                       "interval_seconds": 60, "enabled": False}, headers=FORGED_HOST)
    assert created.status_code == 201 and "evil.example" not in created.headers["Location"]
    add_tasks(api, 2)
    page = api.get("/api/tasks/?limit=1&offset=1", headers=FORGED_HOST).get_json()
    assert page["next"] == "/api/tasks/?limit=1&offset=2"
    assert page["previous"] == "/api/tasks/?limit=1&offset=0"
    assert api.get(page["next"]).get_json()["results"][0]["name"] == "t1"


def test_page_links_start_with_the_configured_public_url(database_url: str, redis_url: str) -> None:
    with app_on(database_url, redis_url, PUBLIC_URL="https://chime.example.com") as app:
        api = ApiClient(app.test_client())
        add_tasks(api, 2)
        page = api.get("/api/logs/?limit=1", headers=FORGED_HOST).get_json()
        assert page["next"] is None
        page = api.get("/api/tasks/?limit=1&enabled=false", headers=FORGED_HOST).get_json()
        assert page["next"] == "https://chime.example.com/api/tasks/?enabled=false&limit=1&offset=1"


def test_admin_redirects_stay_relative_under_a_forged_host(client: Any) -> None:
    response = client.get("/tasks", headers=FORGED_HOST)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


# ---------------------------------------------------------------------------- web boundary settings

def test_production_cookies_are_secure_and_development_ones_are_not() -> None:
    assert web_settings({"CHIME_ENV": "production"})["SESSION_COOKIE_SECURE"] is True
    assert web_settings({})["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize("raw,depth", [("", 0), ("0", 0), ("1", 1), (" 2 ", 2)])
def test_the_proxy_depth_defaults_to_trusting_no_header(raw: str, depth: int) -> None:
    assert proxy_depth(raw) == depth


@pytest.mark.parametrize("raw", ["-1", "one", "٣", "11", "1.5"])
def test_a_bad_proxy_depth_stops_the_app(raw: str) -> None:
    with pytest.raises(ConfigError, match="CHIME_PROXY_FIX_X_FOR"):
        proxy_depth(raw)


@pytest.mark.parametrize("raw,url", [("", ""), ("https://chime.example.com/", "https://chime.example.com"),
                                     ("http://10.0.0.5:8000", "http://10.0.0.5:8000")])
def test_the_public_url_is_an_http_origin(raw: str, url: str) -> None:
    assert public_url(raw) == url


@pytest.mark.parametrize("raw", ["chime.example.com", "ftp://chime.example.com", "https://", "https://x.example/?a=1"])
def test_a_bad_public_url_stops_the_app(raw: str) -> None:
    with pytest.raises(ConfigError, match="CHIME_PUBLIC_URL"):
        public_url(raw)


def test_a_stored_token_notes_its_last_use_at_most_once_a_minute(app: Any, client: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    token = create_token("ci")
    headers = {"Authorization": f"Bearer {token}"}
    first_use = datetime(2031, 1, 1, 12, 0, tzinfo=timezone.utc)

    def use_at(instant: datetime) -> datetime | None:
        monkeypatch.setattr(webapp.auth, "utcnow", lambda: instant)
        assert client.get("/api/tasks/", headers=headers).status_code == 200
        db.session.expire_all()
        return db.session.scalar(select(ApiToken.last_used_at).where(ApiToken.token_hash == hash_token(token)))

    assert use_at(first_use) == first_use
    assert use_at(first_use + timedelta(seconds=59)) == first_use  # not a write per request
    assert use_at(first_use + timedelta(seconds=61)) == first_use + timedelta(seconds=61)
