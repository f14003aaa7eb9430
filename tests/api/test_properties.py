"""Whatever a client sends to the task routes, the server answers 2xx or a clean 4xx and keeps its data intact.

Hypothesis property tests through the Flask test client, on SQLite. The examples of one test share
one database on purpose: each example compares the state right before and right after its request.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chime import occurrence as occ
from tests.api.test_tasks import INTERVAL_TASK
from tests.conftest import AUTH, ApiClient, app_on
from chime.validation import MAX_ID

PROPERTY_SETTINGS = settings(max_examples=80, derandomize=True, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                    HealthCheck.data_too_large])
ERROR_CODES = {400: {"validation_error", "bad_request"}, 404: {"not_found"}, 409: {"conflict"},
               413: {"payload_too_large"}, 415: {"unsupported_media_type"}}

# --------------------------------------------------------------------------- strategies

# Any character, often one of the troublesome ones: NUL, lone surrogates (legal as JSON escapes, not in
# UTF-8), whitespace, the characters LIKE patterns treat specially, and some beyond ASCII.
SPECIAL_CHARACTERS = ["\x00", "\ud800", "\udfff", " ", "\t", "\n", "%", "_", "\\", "'", "\u00e9", "\U0001f600"]
TEXT = st.lists(st.characters() | st.characters() | st.sampled_from(SPECIAL_CHARACTERS), max_size=20).map("".join)
NUMBERS = (st.integers() | st.integers(min_value=-2, max_value=2**64)
           | st.floats() | st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**63, 10**20, 0.5, 1e308]))
JSON_SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


def either(valid: st.SearchStrategy[Any], *invalid: Any) -> st.SearchStrategy[Any]:
    """Mostly plausible values (valid or nearly so), sometimes anything at all."""
    return st.one_of(valid, *[st.sampled_from(values) if isinstance(values, list) else values for values in invalid],
                     JSON_VALUES)


def bounded(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high) | st.sampled_from([low - 1, low, high, high + 1, -(2**63), 2**63])


INSTANTS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                        timezones=st.none() | st.sampled_from([timezone.utc, timezone(timedelta(hours=14)),
                                                               timezone(timedelta(hours=-12, minutes=-30))]))
ISO_TEXT = INSTANTS.map(lambda value: value.isoformat())
NEAR_FUTURE = st.integers(-3600, 10 * 365 * 86400).map(
    lambda seconds: (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat())
DATE_VALUES = either(ISO_TEXT | NEAR_FUTURE, ["2030-02-30T00:00:00", "yesterday", "", "2030-01-01T25:00:00Z"])
JOB_ARGS = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"message": TEXT}),
    st.fixed_dictionaries({"seconds": NUMBERS}),
    st.fixed_dictionaries({"url": st.sampled_from(["https://example.com", "ftp://x", "http://"]) | TEXT},
                          optional={"method": TEXT, "headers": JSON_VALUES, "timeout_seconds": NUMBERS}),
    st.dictionaries(TEXT, JSON_VALUES, max_size=3),
)

TASK_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": either(TEXT, ["ping", " ", "", "x" * 201, "a" * 200]),
    "description": either(TEXT, ["x" * 10_001]),
    "job": either(st.sampled_from(["echo", "noop", "sleep", "fail", "http_request", "shell"]), ["nope", "ECHO"]),
    "args": either(JOB_ARGS),
    "schedule_type": either(st.sampled_from(["ONE_TIME", "CRON", "INTERVAL"]), ["WEEKLY", "cron", ""]),
    "run_at": DATE_VALUES,
    "cron": either(st.sampled_from(["* * * * *", "0 9 * * 1-5", "@daily", "*/15 * * * *", "0 0 29 2 *"]),
                   ["61 * * * *", "0 0 30 2 *", "*/0 * * * *", "* * * *", "@never", "x" * 201]),
    "interval_seconds": either(bounded(1, 10 * 365 * 24 * 3600)),
    "timezone": either(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Kiritimati"]),
                       ["Mars/Olympus", "../etc/passwd", "", "Etc/GMT+14", "x" * 65]),
    "start_at": DATE_VALUES,
    "end_at": DATE_VALUES,
    "enabled": either(st.booleans(), ["true", 1]),
    "max_retries": either(bounded(0, 100)),
    "retry_backoff_seconds": either(bounded(1, 86_400)),
    "timeout_seconds": either(bounded(1, 7 * 86_400)),
    "depends_on": either(st.lists(st.integers(-1, 5) | st.sampled_from([MAX_ID, MAX_ID + 1, 2**63]), max_size=4)),
    "overlap": either(st.sampled_from(["SKIP", "ALLOW"]), ["QUEUE", "skip"]),
    "misfire_grace_seconds": either(bounded(0, 365 * 86_400)),
    "queue": either(st.sampled_from(["high", "default", "low"]), ["urgent", "HIGH"]),
    "notify": either(st.sampled_from(["ALWAYS", "ON_FAILURE", "NEVER"]), ["SOMETIMES"]),
    # read-only fields are accepted and ignored, whatever their value; unknown ones are rejected
    "id": JSON_VALUES,
    "status": JSON_VALUES,
    "created_at": JSON_VALUES,
    "colour": JSON_VALUES,
}
TASK_LIKE = st.fixed_dictionaries({}, optional=TASK_FIELDS)

# Valid tasks by construction; a few fields of one are then replaced by the mixed values above, so
# that requests get past the other checks and reach the database and the scheduler with odd values.
STORABLE_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
VALID_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "description": STORABLE_TEXT,
    "timezone": st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    "enabled": st.booleans(),
    "max_retries": st.integers(0, 100),
    "retry_backoff_seconds": st.integers(1, 86_400),
    "timeout_seconds": st.integers(1, 7 * 86_400),
    "overlap": st.sampled_from(["SKIP", "ALLOW"]),
    "misfire_grace_seconds": st.integers(0, 365 * 86_400),
    "queue": st.sampled_from(["high", "default", "low"]),
    "notify": st.sampled_from(["ALWAYS", "ON_FAILURE", "NEVER"]),
}
VALID_JOBS = st.one_of(
    st.just({"job": "noop"}),
    st.fixed_dictionaries({"job": st.just("echo"), "args": st.fixed_dictionaries({"message": STORABLE_TEXT})}),
    st.fixed_dictionaries({"job": st.just("sleep"), "args": st.fixed_dictionaries({"seconds": st.integers(0, 60)})}),
    st.just({"job": "http_request", "args": {"url": "https://example.com/hook", "method": "POST"}}),
)
VALID_SCHEDULES = st.one_of(
    st.fixed_dictionaries({"schedule_type": st.just("INTERVAL"), "interval_seconds": st.integers(1, 10**8)}),
    st.fixed_dictionaries({"schedule_type": st.just("CRON"),
                           "cron": st.sampled_from(["* * * * *", "0 9 * * 1-5", "@daily", "30 2 29 2 *"])}),
    st.fixed_dictionaries({"schedule_type": st.just("ONE_TIME"), "run_at": ISO_TEXT | NEAR_FUTURE}),
)
UNIQUE_PREFIX = st.uuids().map(lambda u: f"task {u.hex[:8]} ")
VALID_TASK = st.builds(lambda name, job, schedule, extra: {"name": name, **job, **schedule, **extra},
                       st.builds(str.__add__, UNIQUE_PREFIX, STORABLE_TEXT), VALID_JOBS, VALID_SCHEDULES,
                       st.fixed_dictionaries({}, optional=VALID_FIELDS))
MUTATIONS = st.lists(st.sampled_from(sorted(TASK_FIELDS)).flatmap(
    lambda key: TASK_FIELDS[key].map(lambda value: (key, value))), max_size=2).map(dict)
NEARLY_VALID_TASK = st.builds(lambda task, changes: {**task, **changes}, VALID_TASK, MUTATIONS)
# A valid task whose name and description hold any text at all (NUL, lone surrogates...).
ODD_TEXT_TASK = st.builds(lambda task, name, description: {**task, "name": name, "description": description},
                          VALID_TASK, st.builds(str.__add__, UNIQUE_PREFIX, TEXT), TEXT)
NEARLY_VALID_PATCH = st.builds(lambda fields, schedule, changes: {**fields, **schedule, **changes},
                               st.fixed_dictionaries({}, optional=VALID_FIELDS), st.just({}) | VALID_SCHEDULES,
                               MUTATIONS)
TASK_BODIES = TASK_LIKE | NEARLY_VALID_TASK | ODD_TEXT_TASK
PATCH_BODIES = JSON_VALUES | TASK_LIKE | NEARLY_VALID_PATCH

# --------------------------------------------------------------------------- fixtures and checks


@pytest.fixture
def sqlite_app(tmp_path: Any, redis_url: str) -> Iterator[Any]:
    with app_on(f"sqlite:///{tmp_path / 'properties.sqlite3'}", redis_url) as app:
        yield app


@pytest.fixture
def sqlite_api(sqlite_app: Any) -> ApiClient:
    return ApiClient(sqlite_app.test_client())


@pytest.fixture
def redis(sqlite_app: Any) -> Any:
    return sqlite_app.extensions["redis"]


@pytest.fixture
def existing_task(sqlite_api: ApiClient) -> dict[str, Any]:
    sqlite_api.post("/api/tasks/", {**INTERVAL_TASK, "name": "parent"})
    response = sqlite_api.post("/api/tasks/", {**INTERVAL_TASK, "depends_on": [1]})
    assert response.status_code == 201
    return response.get_json()


def send(api: ApiClient, method: str, path: str, body: Any) -> Any:
    """Send `body` as the JSON document it is (null included), as a client library would."""
    return api.client.open(path, method=method, data=json.dumps(body),
                           headers={**AUTH, "Content-Type": "application/json"})


def task_count(api: ApiClient) -> int:
    return api.get("/api/tasks/").get_json()["count"]


def assert_clean_answer(response: Any, *success: int) -> None:
    """A success the route promises, or a 4xx with the one error body: {error, message, fields?}."""
    assert response.status_code < 500, response.get_data(as_text=True)
    event(f"HTTP {response.status_code}")  # see --hypothesis-show-statistics
    if response.status_code in success:
        return
    assert response.status_code in ERROR_CODES, response.status_code
    body = response.get_json()
    assert isinstance(body, dict) and {"error", "message"} <= set(body) <= {"error", "message", "fields"}, body
    assert body["error"] in ERROR_CODES[response.status_code]
    assert isinstance(body["message"], str) and body["message"]
    if "fields" in body:
        fields = body["fields"]
        assert isinstance(fields, dict) and fields
        assert all(isinstance(name, str) and isinstance(reason, str) and reason for name, reason in fields.items())


# --------------------------------------------------------------------------- properties


@PROPERTY_SETTINGS
@given(body=JSON_VALUES)
def test_any_json_body_posted_as_a_task_is_a_clean_answer_and_a_rejection_stores_nothing(
        sqlite_api: ApiClient, body: Any) -> None:
    before = task_count(sqlite_api)
    response = send(sqlite_api, "POST", "/api/tasks/", body)
    assert_clean_answer(response, 201)
    assert task_count(sqlite_api) == before + (response.status_code == 201)


@PROPERTY_SETTINGS
@given(body=TASK_BODIES)
def test_any_task_like_body_posted_is_a_clean_answer_and_a_rejection_stores_nothing(
        sqlite_api: ApiClient, redis: Any, body: dict[str, Any]) -> None:
    before = task_count(sqlite_api)
    pending_before = redis.hlen(occ.PENDING_KEY)
    response = send(sqlite_api, "POST", "/api/tasks/", body)
    assert_clean_answer(response, 201)
    if response.status_code == 201:
        created = response.get_json()
        assert sqlite_api.get(f"/api/tasks/{created['id']}/").get_json() == created
        assert task_count(sqlite_api) == before + 1
    else:
        assert task_count(sqlite_api) == before
        assert redis.hlen(occ.PENDING_KEY) == pending_before


@PROPERTY_SETTINGS
@given(body=PATCH_BODIES)
def test_any_body_patched_onto_a_task_is_a_clean_answer_and_a_rejection_changes_nothing(
        sqlite_api: ApiClient, redis: Any, existing_task: dict[str, Any], body: Any) -> None:
    path = f"/api/tasks/{existing_task['id']}/"
    before = sqlite_api.get(path).get_json()
    pending_before = occ.pending_job_id(redis, existing_task["id"])
    response = send(sqlite_api, "PATCH", path, body)
    assert_clean_answer(response, 200)
    after = sqlite_api.get(path).get_json()
    if response.status_code == 200:
        assert after == response.get_json()
    else:
        assert after == before
        assert occ.pending_job_id(redis, existing_task["id"]) == pending_before


@PROPERTY_SETTINGS
@given(body=TASK_BODIES)
def test_any_task_like_body_put_onto_a_task_is_a_clean_answer_and_a_rejection_changes_nothing(
        sqlite_api: ApiClient, existing_task: dict[str, Any], body: dict[str, Any]) -> None:
    path = f"/api/tasks/{existing_task['id']}/"
    before = sqlite_api.get(path).get_json()
    response = send(sqlite_api, "PUT", path, body)
    assert_clean_answer(response, 200)
    assert sqlite_api.get(path).get_json() == (response.get_json() if response.status_code == 200 else before)


QUERY_NAMES = ["limit", "offset", "status", "enabled", "schedule_type", "search", "task_id", "trigger", "since",
               "until", "unread"]
# Query values are bytes on the wire: any bytes (invalid UTF-8 included), text, or numbers, percent-encoded.
QUERY_VALUES = st.binary(max_size=12) | TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")) | NUMBERS.map(
    lambda number: str(number).encode())
QUERIES = st.dictionaries(st.sampled_from(QUERY_NAMES), QUERY_VALUES, max_size=4).map(
    lambda query: "&".join(f"{name}={quote_from_bytes(value)}" for name, value in query.items()))


@PROPERTY_SETTINGS
@given(query=QUERIES)
def test_any_list_query_is_a_clean_answer(sqlite_api: ApiClient, existing_task: dict[str, Any], query: str) -> None:
    for path in ("/api/tasks/", "/api/logs/", "/api/notifications/", f"/api/tasks/{existing_task['id']}/logs/"):
        assert_clean_answer(sqlite_api.get(f"{path}?{query}"), 200)


@PROPERTY_SETTINGS
@given(body=VALID_TASK)
def test_every_valid_task_is_created_unless_its_name_is_taken(sqlite_api: ApiClient, body: dict[str, Any]) -> None:
    """The properties above are not vacuous: what the rules allow is stored, and read back as sent."""
    response = send(sqlite_api, "POST", "/api/tasks/", body)
    assert response.status_code in (201, 409), response.get_json()
    if response.status_code == 201:
        created = response.get_json()
        as_sent = {key: value for key, value in body.items() if key not in ("name", "args", "run_at")}
        assert {key: created[key] for key in as_sent} == as_sent
        assert created["name"] == body["name"].strip()
        assert created["args"].items() >= body.get("args", {}).items()  # plus the defaults of the job
        assert (created["run_at"] is None) == ("run_at" not in body)


@PROPERTY_SETTINGS
@given(body=ODD_TEXT_TASK)
def test_any_text_as_name_and_description_is_stored_or_refused_naming_only_those(
        sqlite_api: ApiClient, body: dict[str, Any]) -> None:
    response = send(sqlite_api, "POST", "/api/tasks/", body)
    assert_clean_answer(response, 201, 409)
    if response.status_code == 400:
        assert set(response.get_json()["fields"]) <= {"name", "description"}
