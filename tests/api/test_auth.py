"""Every API route but health needs a valid bearer token."""
from __future__ import annotations

from typing import Any

import pytest

from webapp.auth import create_token, hash_token
from webapp.extensions import db
from webapp.models import ApiToken

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
    result = app.test_cli_runner().invoke(args=["create-token", "--name", "ci"])
    token = result.output.strip()
    assert result.exit_code == 0 and token.startswith("chime_")
    stored = db.session.query(ApiToken).one()
    assert stored.token_hash == hash_token(token) and token not in stored.token_hash
    assert client.get("/api/tasks/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_created_token_is_random_each_time(app: Any) -> None:
    assert create_token("a") != create_token("b")
