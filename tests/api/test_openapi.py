"""The OpenAPI document describes every /api/ route, and the API keeps its promises (schemathesis)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import scheduler.worker
from tests.conftest import AUTH, app_on
from webapp.arguments import IdConverter
from webapp.api.openapi import openapi_document
from chime.extensions import db
from chime.models import Execution, Notification
from chime.validation import MAX_ID

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance,
          response_headers_conformance]
EXAMPLES_PER_OPERATION = 30
SEED_TASKS = [
    {"name": "alpha", "job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL", "interval_seconds": 60},
    {"name": "beta", "job": "noop", "schedule_type": "CRON", "cron": "0 9 * * 1-5", "depends_on": [1]},
    {"name": "gamma", "job": "noop", "schedule_type": "ONE_TIME", "run_at": "2031-01-01T00:00:00Z"},
]


def openapi_path(rule: str) -> str:
    """Turn a Flask rule such as /api/tasks/<int:task_id>/ into /api/tasks/{task_id}/."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def documented_operations() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in openapi_document()["paths"].items()
            for method in item if method in HTTP_METHODS]


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def resolve(document: dict[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part]
    return node


@pytest.fixture
def sqlite_app(tmp_path: Any, redis_url: str) -> Iterator[Any]:
    """The app on a fresh SQLite database, holding three tasks, two executions and two notifications."""
    with app_on(f"sqlite:///{tmp_path / 'openapi.sqlite3'}", redis_url) as app:
        seed(app)
        yield app


def seed(app: Any) -> None:
    client = app.test_client()
    for task in SEED_TASKS:
        assert client.post("/api/tasks/", json=task, headers=AUTH).status_code == 201
    now = datetime.now(timezone.utc)
    done = Execution(task_id=1, task_name="alpha", status="SUCCESS", attempt=1, trigger="SCHEDULE",
                     scheduled_for=now - timedelta(minutes=2), started_at=now - timedelta(minutes=2),
                     finished_at=now - timedelta(minutes=1), duration_ms=60_000, message="ok",
                     result={"message": "hi"}, worker="worker-1", job_id="chime-1-a")
    waiting = Execution(task_id=2, task_name="beta", status="PENDING", attempt=1, trigger="MANUAL",
                        scheduled_for=now)
    db.session.add_all([done, waiting])
    db.session.flush()
    db.session.add_all([
        Notification(task_id=1, execution_id=done.id, level="SUCCESS", title="'alpha' succeeded", message="ok"),
        Notification(task_id=2, level="ERROR", title="'beta' failed", message="boom", read=True),
    ])
    db.session.commit()


@pytest.fixture
def api_schema(sqlite_app: Any) -> Any:
    """The document as the app serves it, loaded by schemathesis, sending the bearer token."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", sqlite_app, headers=AUTH)
    schema.config.update(headers=dict(AUTH))
    return schema


# --------------------------------------------------------------------------- the document itself


def test_document_lists_every_api_route_of_the_app_and_nothing_else(sqlite_app: Any) -> None:
    routes = {(method, openapi_path(rule.rule))
              for rule in sqlite_app.url_map.iter_rules() if rule.rule.startswith("/api/")
              for method in rule.methods - IMPLICIT_METHODS}
    assert set(documented_operations()) == routes


def test_path_parameters_match_the_rule_arguments(sqlite_app: Any) -> None:
    document = openapi_document()
    for rule in sqlite_app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in rule.methods - IMPLICIT_METHODS:
            operation = document["paths"][openapi_path(rule.rule)][method.lower()]
            in_path = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "path"}
            assert set(in_path) == set(rule.arguments), (method, rule.rule)
            for name, parameter in in_path.items():  # <int:...> is a row id; any other converter reads text
                expected = "integer" if isinstance(rule._converters[name], IdConverter) else "string"
                assert parameter["required"] and parameter["schema"]["type"] == expected, (rule.rule, name)


def test_every_documented_path_but_the_document_itself_ends_with_a_slash() -> None:
    assert all(path.endswith("/") or path == "/api/openapi.json" for path in openapi_document()["paths"])


def test_document_is_valid_openapi_3_0() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.0.3"
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.0 meta-schema schemathesis ships


def test_every_reference_resolves() -> None:
    document = openapi_document()
    refs = set(refs_in(document))
    assert refs, "the document uses $ref for its shared parts"
    for pointer in refs:
        assert pointer.startswith("#/components/")
        resolve(document, pointer)


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for item in openapi_document()["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


HEALTH_PATHS = {"/api/health/", "/api/health/ready/", "/api/health/live/"}


def test_bearer_token_is_required_everywhere_but_health() -> None:
    document = openapi_document()
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["security"] == [{"bearerAuth": []}]
    for method, path in documented_operations():
        operation = document["paths"][path][method.lower()]
        if path in HEALTH_PATHS:
            assert operation["security"] == [] and "401" not in operation["responses"]
        else:
            assert "security" not in operation and "401" in operation["responses"]


STATE_NOT_ERROR = {("GET", "/api/health/", "503"), ("GET", "/api/health/ready/", "503")}  # they report a state


def test_every_error_response_uses_the_error_schema() -> None:
    document = openapi_document()
    for method, path in documented_operations():
        for status, response in document["paths"][path][method.lower()]["responses"].items():
            if status.startswith(("4", "5")) and (method, path, status) not in STATE_NOT_ERROR:
                schema = resolve(document, response["$ref"])["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"]
    assert error["properties"]["fields"]["additionalProperties"] == {"type": "string"}


def test_task_input_rejects_unknown_fields_but_accepts_the_read_only_ones() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for name in ("TaskInput", "TaskPatch"):
        assert schemas[name]["additionalProperties"] is False
        for field in ("id", "status", "created_at", "updated_at", "next_run_at", "last_run_at", "last_status"):
            assert schemas[name]["properties"][field]["readOnly"] is True
    assert schemas["TaskInput"]["required"] == ["name", "job", "schedule_type"]
    assert "required" not in schemas["TaskPatch"]


def test_bounds_and_enums_follow_the_validation_rules() -> None:
    properties = openapi_document()["components"]["schemas"]["TaskInput"]["properties"]
    assert properties["schedule_type"]["enum"] == ["ONE_TIME", "CRON", "INTERVAL"]
    assert properties["queue"]["enum"] == ["high", "default", "low", None]  # null: the default
    assert properties["notify"]["enum"] == ["ALWAYS", "ON_FAILURE", "NEVER", None]
    assert properties["overlap"]["enum"] == ["SKIP", "ALLOW", None]
    assert {"echo", "noop", "sleep", "fail", "http_request", "shell"} <= set(properties["job"]["enum"])
    assert (properties["max_retries"]["minimum"], properties["max_retries"]["maximum"]) == (0, 100)
    assert (properties["interval_seconds"]["minimum"], properties["interval_seconds"]["nullable"]) == (1, True)
    assert properties["name"]["maxLength"] == 200
    assert properties["depends_on"]["maxItems"] == 100


def test_pagination_parameters_carry_their_bounds() -> None:
    parameters = {p["name"]: p["schema"] for p in openapi_document()["paths"]["/api/logs/"]["get"]["parameters"]}
    assert (parameters["limit"]["minimum"], parameters["limit"]["maximum"]) == (1, 500)
    assert parameters["offset"]["minimum"] == 0
    assert parameters["status"]["enum"] == ["PENDING", "RUNNING", "SUCCESS", "FAILED", "RETRYING", "SKIPPED", "CANCELLED"]
    assert parameters["trigger"]["enum"] == ["SCHEDULE", "MANUAL", "RETRY", "RECOVERY"]


def test_the_served_document_is_the_built_one(sqlite_app: Any) -> None:
    response = sqlite_app.test_client().get("/api/openapi.json", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == openapi_document()


SAMPLES = {
    "Task": lambda client: client.get("/api/tasks/1/", headers=AUTH).get_json(),
    "Execution": lambda client: client.get("/api/logs/", headers=AUTH).get_json()["results"][0],
    "ExecutionDetail": lambda client: client.get("/api/logs/1/", headers=AUTH).get_json(),
    "Notification": lambda client: client.get("/api/notifications/?unread=true", headers=AUTH).get_json()["results"][0],
    "Stats": lambda client: client.get("/api/stats/", headers=AUTH).get_json(),
    "CronPreview": lambda client: client.get("/api/cron/preview/?cron=@daily", headers=AUTH).get_json(),
    "Health": lambda client: client.get("/api/health/").get_json(),
    "Readiness": lambda client: client.get("/api/health/ready/").get_json(),
    "Liveness": lambda client: client.get("/api/health/live/").get_json(),
    "RunResult": lambda client: client.post("/api/tasks/1/run/", headers=AUTH).get_json(),
    "ReconcileRequest": lambda client: client.post("/api/reconcile/", headers=AUTH).get_json(),
    "ReconcileReport": lambda client: reconcile_report(client),
}


def reconcile_report(client: Any) -> dict[str, Any]:
    """Ask for a pass, let an in-process worker run it, and read its report where the API says."""
    location = client.post("/api/reconcile/", headers=AUTH).headers["Location"]
    app = client.application
    previous, scheduler.worker._app = scheduler.worker._app, app  # the worker's app is the test's app
    try:
        scheduler.worker.ChimeWorker(["high"], connection=app.extensions["redis"]).work(burst=True)
    finally:
        scheduler.worker._app = previous
    return client.get(location, headers=AUTH).get_json()["report"]


@pytest.mark.parametrize("name,sample", SAMPLES.items(), ids=list(SAMPLES))
def test_documented_properties_are_exactly_the_ones_the_api_sends(sqlite_app: Any, name: str, sample: Any) -> None:
    schema = openapi_document()["components"]["schemas"][name]
    assert set(schema["properties"]) == set(sample(sqlite_app.test_client()))
    assert set(schema["required"]) == set(schema["properties"])


def test_an_unsupported_method_is_the_documented_405(sqlite_app: Any) -> None:
    response = sqlite_app.test_client().put("/api/logs/", headers=AUTH)
    assert response.status_code == 405
    assert response.headers["Allow"]
    assert set(response.get_json()) == {"error", "message"}
    assert response.get_json()["error"] in openapi_document()["components"]["schemas"]["Error"]["properties"][
        "error"]["enum"]


def test_every_documented_example_is_accepted(sqlite_app: Any) -> None:
    client = sqlite_app.test_client()
    paths = openapi_document()["paths"]
    for name, example in paths["/api/tasks/"]["post"]["requestBody"]["content"]["application/json"][
            "examples"].items():
        response = client.post("/api/tasks/", json=example["value"], headers=AUTH)
        assert response.status_code == 201, (name, response.get_json())
    for name, example in paths["/api/tasks/{task_id}/"]["patch"]["requestBody"]["content"]["application/json"][
            "examples"].items():
        response = client.patch("/api/tasks/1/", json=example["value"], headers=AUTH)
        assert response.status_code == 200, (name, response.get_json())
    example_query = {p["name"]: p["example"] for p in paths["/api/cron/preview/"]["get"]["parameters"]}
    assert client.get("/api/cron/preview/", query_string=example_query, headers=AUTH).status_code == 200


# --------------------------------------------------------------------------- the documented bounds hold at the edges


ID_PATHS = [(method, path) for method, path in documented_operations() if "{" in path]
BEYOND_MAX_ID = (MAX_ID + 1, 2**63, 10**20)  # past Postgres' INTEGER, past SQLite's 64 bits, far past both


def test_an_id_beyond_the_documented_maximum_is_a_404_not_a_500(api: Any) -> None:
    for method, path in ID_PATHS:
        for object_id in BEYOND_MAX_ID:
            response = api.client.open(re.sub(r"\{[^}]+\}", str(object_id), path), method=method, headers=AUTH)
            assert response.status_code == 404, (method, path, object_id, response.get_json())
            assert response.get_json()["error"] == "not_found"


def test_a_task_id_filter_beyond_the_documented_maximum_is_a_400(api: Any) -> None:
    api.post("/api/tasks/", SEED_TASKS[0])
    for path in ("/api/logs/", "/api/tasks/1/logs/"):
        response = api.get(f"{path}?task_id={MAX_ID + 1}")
        assert response.status_code == 400, path
        assert "task_id" in response.get_json()["fields"]


def test_a_dependency_id_outside_the_documented_range_is_a_400(api: Any) -> None:
    for bad_id in (0, -1, *BEYOND_MAX_ID):
        response = api.post("/api/tasks/", {**SEED_TASKS[0], "depends_on": [bad_id]})
        assert response.status_code == 400, bad_id
        assert "depends_on" in response.get_json()["fields"]
    assert api.get("/api/tasks/").get_json()["count"] == 0


def test_a_search_with_a_nul_character_is_a_400(api: Any) -> None:
    response = api.get("/api/tasks/?search=a%00b")
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"search": "must not contain NUL characters"}


@pytest.mark.parametrize("field", ["name", "description"])
def test_text_with_a_lone_surrogate_is_a_400_not_a_500(api: Any, field: str) -> None:
    body = json.dumps({**SEED_TASKS[0], field: "ping \ud800"})  # JSON allows the escape; UTF-8 cannot store it
    response = api.client.post("/api/tasks/", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert field in response.get_json()["fields"]


# --------------------------------------------------------------------------- schemathesis against the app

SEEDED_IDS = (1, 2, 3)  # tasks 1-3 exist, executions and notifications 1-2: a 4th id is a miss


def case_strategies(operation: Any, mode: schemathesis.GenerationMode) -> list[Any]:
    """Generated cases, cases aimed at the seeded objects, and (positive only) the documented examples.

    Negative data needs something to make invalid: an operation without parameters or body gets none.
    """
    definition = operation.definition.raw
    in_path = [p["name"] for p in definition.get("parameters", []) if p["in"] == "path"]
    other_inputs = "requestBody" in definition or len(definition.get("parameters", [])) > len(in_path)
    any_text = {p["name"] for p in definition.get("parameters", [])
                if p["in"] == "path" and p["schema"] == {"type": "string"}}
    if not mode.is_positive and not (set(in_path) - any_text or other_inputs):
        return []  # nothing can be made invalid (any text is a valid free-text path segment)
    strategies = [operation.as_strategy(generation_mode=mode)]
    if in_path and (mode.is_positive or other_inputs):  # a negative case with a fixed id must break something else
        strategies += [operation.as_strategy(generation_mode=mode, path_parameters=dict.fromkeys(in_path, known))
                       for known in SEEDED_IDS]
    if mode.is_positive:
        strategies += operation.get_strategies_from_examples()
    return strategies


@pytest.mark.parametrize("method,path", documented_operations(), ids=[f"{m} {p}" for m, p in documented_operations()])
def test_api_conforms_to_its_document(api_schema: Any, method: str, path: str) -> None:
    """For valid and invalid requests alike: no 500, and every response has the status, content type,
    headers and body the document promises (a health route's 503 is a documented state: here no scheduler runs)."""
    operation = api_schema[path][method]
    checks = [c for c in CHECKS if c is not not_a_server_error or (method, path, "503") not in STATE_NOT_ERROR]
    for mode in schemathesis.GenerationMode:
        strategies = case_strategies(operation, mode)
        if not strategies:
            continue

        @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                         HealthCheck.filter_too_much, HealthCheck.data_too_large])
        @given(case=st.one_of(strategies))
        def check(case: Any) -> None:
            case.call_and_validate(headers=dict(AUTH), checks=checks)  # examples do not carry the config headers

        check()
