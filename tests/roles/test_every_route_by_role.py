"""Every route with every role (issue 15): a request beyond the caller's role gets 403 and changes nothing;
a request within it is never refused (401/403) and never fails (500).

The walk is generic: it takes every operation of /api/openapi.json (which must list every /api/ rule of the
app) and every admin page of app.url_map, asks the view which role it declares (webapp.auth.required_role),
fills the path with ids of rows made here, and sends a minimal body. A route added later is walked too.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import url_for
from sqlalchemy import select

from chime import services
from chime.enums import Role
from chime.extensions import db
from chime.models import ApiToken, Execution, Notification
from chime.unit_of_work import unit_of_work
from tests.admin.conftest import AdminClient, sign_in
from tests.conftest import AUTH
from tests.roles.conftest import PASSWORD
from webapp.api.blueprint import PUBLIC_ENDPOINTS
from webapp.auth import create_token, create_user, required_role

IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
REFUSED_STATUS = 403
NEVER_FOR_AN_ALLOWED_ROLE = {401, 403, 500}
# Written on purpose by a request that is then refused: who used a token, at most once a minute.
NOTED_ANYWAY = {("api_tokens", "last_used_at")}


@dataclass(frozen=True)
class Call:
    """One route with one method, its path filled in, and the role its view declares."""

    method: str
    path: str
    endpoint: str
    needs: Role

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.endpoint}, needs {self.needs.value})"


# --------------------------------------------------------------------------- rows to point at


def make_rows(client: Any) -> dict[str, Any]:
    """A task, a run of it, a notification, a user other than the callers and a token of theirs;
    their ids fill the paths (a name the walk does not know gets 1: a 404 is fine for it)."""
    client.application.config["SECRETS_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()  # channels' secrets
    with unit_of_work():
        task = services.create_task({"name": "walked", "job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL",
                                     "interval_seconds": 3600}, allow_shell=False)
    at = datetime.now(timezone.utc) - timedelta(minutes=5)
    execution = Execution(task_id=task.id, task_name=task.name, status="FAILED", attempt=1, trigger="SCHEDULE",
                          scheduled_for=at, started_at=at, finished_at=at + timedelta(seconds=1), duration_ms=1000,
                          message="boom", created_at=at)
    notification = Notification(task_id=task.id, level="ERROR", title="walked failed", read=False, message="")
    db.session.add_all([execution, notification])
    db.session.commit()
    other = create_user("someone-else", PASSWORD, role=Role.VIEWER)
    create_token("theirs", other)
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == other.id))
    assert client.get("/api/tasks/", headers=AUTH).status_code == 200
    rows = {"task_id": task.id, "execution_id": execution.id, "notification_id": notification.id,
            "user_id": other.id, "token_id": token.id, "queue": "default", "job_id": "chime-not-a-job"}
    return make_rows_by_example(client, rows)


def make_rows_by_example(client: Any, rows: dict[str, Any]) -> dict[str, Any]:
    """For every other {name_id} of the document: a row made by POSTing a documented example of its
    collection (e.g. POST /api/channels/ for {channel_id}) as an admin, the first one accepted."""
    document = client.get("/api/openapi.json", headers=AUTH).get_json()
    for path in document["paths"]:
        for match in re.finditer(r"\{(\w+_id)\}", path):
            name, collection = match.group(1), path[:match.start()]
            create = document["paths"].get(collection, {}).get("post", {})
            examples = create.get("requestBody", {}).get("content", {}).get("application/json", {}).get("examples")
            if name in rows or not examples:
                continue
            for example in examples.values():
                made = client.post(collection, json=example["value"], headers=AUTH)
                if made.status_code == 201 and isinstance(made.get_json(), dict) and "id" in made.get_json():
                    rows[name] = made.get_json()["id"]
                    break
    return rows


def value_for(name: str, rows: dict[str, Any], is_id: bool) -> Any:
    if name in rows:
        return rows[name]
    return 1 if is_id else "x"  # no row to point at: a 404 is a fine answer for this name


# --------------------------------------------------------------------------- the routes


def openapi_operations(client: Any) -> list[tuple[str, str, bool]]:
    """(method, path template, public) of every operation of the served document."""
    document = client.get("/api/openapi.json", headers=AUTH).get_json()
    return [(method.upper(), path, operation.get("security") == [])
            for path, item in document["paths"].items() for method, operation in item.items()]


def as_openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def api_calls(app: Any, client: Any, rows: dict[str, Any]) -> list[Call]:
    adapter = app.url_map.bind("localhost")
    calls = []
    for method, template, public in openapi_operations(client):
        if public:
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: str(value_for(m.group(1), rows, m.group(1).endswith("_id"))), template)
        endpoint, _ = adapter.match(path, method)
        calls.append(Call(method, path, endpoint, required_role(app.view_functions[endpoint])))
    return in_walking_order(calls)


def admin_calls(app: Any, rows: dict[str, Any]) -> list[Call]:
    calls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            view = app.view_functions[rule.endpoint]
            if not rule.endpoint.startswith("admin.") or getattr(view, "public", False):
                continue
            values = {name: value_for(name, rows, type(rule._converters[name]).__name__ == "IdConverter")
                      for name in rule.arguments}
            path = url_for(rule.endpoint, **values)
            calls.extend(Call(method, path, rule.endpoint, required_role(view))
                         for method in sorted(rule.methods - IMPLICIT_METHODS))
    return in_walking_order(calls)


def in_walking_order(calls: list[Call]) -> list[Call]:
    """Deletions last, so the other routes meet the rows while they exist."""
    return sorted(calls, key=lambda call: call.method == "DELETE" or "delete" in call.endpoint)


# --------------------------------------------------------------------------- what a refusal must not change


def database_state() -> dict[str, str]:
    """A digest of every row of every table (the columns in NOTED_ANYWAY left out)."""
    state = {}
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if (table.name, c.name) not in NOTED_ANYWAY]
        rows = db.session.execute(select(*columns).order_by(*table.primary_key.columns)).all()
        state[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    db.session.rollback()
    return state


def redis_state(redis: Any) -> dict[bytes, Any]:
    return {key: redis.dump(key) for key in sorted(redis.keys("*"))}


# --------------------------------------------------------------------------- the callers


def bearer_for(role: Role) -> dict[str, str]:
    user = create_user(f"walker-{role.value}", PASSWORD, role=role)
    return {"Authorization": f"Bearer {create_token('walk', user)}"}


def signed_in_as(app: Any, role: Role) -> AdminClient:
    create_user(f"signed-{role.value}", PASSWORD, role=role)
    client = app.test_client()
    assert sign_in(client, f"signed-{role.value}", PASSWORD).status_code == 302
    return AdminClient(client)


def send_api(client: Any, call: Call, headers: dict[str, str]) -> Any:
    body = {} if call.method in ("POST", "PUT", "PATCH") else None
    return client.open(call.path, method=call.method, json=body, headers=headers)


def send_admin(admin: AdminClient, call: Call) -> Any:
    if call.method == "GET":
        return admin.get(call.path)
    return admin.client.open(call.path, method=call.method, data={"csrf_token": admin.token})


def walk(calls: list[Call], role: Role, send: Any, redis: Any) -> Iterator[str]:
    """Send every call as `role`; yield what went wrong."""
    for call in calls:
        allowed = role.includes(call.needs)
        before = None if allowed else (database_state(), redis_state(redis))
        try:
            response = send(call)
            status = response.status_code
            response.close()  # a live stream (GET /events) leaves its hub when closed, as a browser's does
        except Exception as error:  # noqa: BLE001  (a view that raised is a 500)
            db.session.rollback()
            yield f"{call} as {role.value}: raised {error!r}"
            continue
        if allowed and status in NEVER_FOR_AN_ALLOWED_ROLE:
            yield f"{call} as {role.value}: {status}"
        elif not allowed and status != REFUSED_STATUS:
            yield f"{call} as {role.value}: {status}, not {REFUSED_STATUS}"
        elif not allowed and (database_state(), redis_state(redis)) != before:
            yield f"{call} as {role.value}: refused but changed the database or Redis"


# --------------------------------------------------------------------------- the tests


def test_the_openapi_document_lists_every_api_rule_so_the_walk_covers_them(app: Any, client: Any) -> None:
    documented = {(method, path) for method, path, _ in openapi_operations(client)}
    rules = {(method, as_openapi_path(rule.rule)) for rule in app.url_map.iter_rules()
             if rule.rule.startswith("/api/") for method in rule.methods - IMPLICIT_METHODS}

    assert rules - documented == set()


def test_the_walk_skips_only_the_public_health_checks(app: Any, client: Any) -> None:
    adapter = app.url_map.bind("localhost")

    skipped = {adapter.match(path, method)[0] for method, path, public in openapi_operations(client) if public}

    assert skipped == set(PUBLIC_ENDPOINTS)


def test_the_walk_would_see_a_change_in_the_database_or_redis(app: Any, client: Any, redis_client: Any) -> None:
    before = (database_state(), redis_state(redis_client))

    make_rows(client)

    after = (database_state(), redis_state(redis_client))
    assert after[0] != before[0] and after[1] != before[1]


@pytest.mark.parametrize("role", list(Role), ids=[role.value for role in Role])
def test_every_api_operation_answers_each_role_as_its_view_declares(app: Any, client: Any, redis_client: Any,
                                                                     role: Role) -> None:
    headers = bearer_for(role)
    rows = make_rows(client)
    assert client.get("/api/tasks/", headers=headers).status_code == 200  # notes the token's use now
    calls = api_calls(app, client, rows)
    assert {call.needs for call in calls} == set(Role)  # every role guards something

    problems = list(walk(calls, role, lambda call: send_api(client, call, headers), redis_client))

    assert problems == []


@pytest.mark.parametrize("role", list(Role), ids=[role.value for role in Role])
def test_every_admin_page_answers_each_role_as_its_view_declares(app: Any, client: Any, redis_client: Any,
                                                                  role: Role) -> None:
    rows = make_rows(client)
    admin = signed_in_as(app, role)
    calls = admin_calls(app, rows)
    assert {call.needs for call in calls} == set(Role)

    problems = list(walk(calls, role, lambda call: send_admin(admin, call), redis_client))

    assert problems == []
