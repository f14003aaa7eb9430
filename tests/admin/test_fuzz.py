"""Hostile and odd input never makes the admin or the API answer 500: a property-based fuzz.

Every GET route of the admin and the API (read from the app's URL map, so a new route is
fuzzed without touching this file) is called with generated path ids and query strings,
and every admin form with generated field values (and a valid CSRF token), signed in, on
SQLite and Postgres. The generators lean on what broke before: ids past 2^31 and 2^63,
digits that are not ASCII ('²' passes str.isdigit(), int() reads '٣٠' as 30), dates with
year 0, 99999 or month 13, times at the ends of the calendar in extreme time zones.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import ImmutableMultiDict

from tests.admin.conftest import AdminClient, add_execution, add_notification, add_task
from tests.conftest import AUTH
from webapp.arguments import digits_up_to, parse_id, parse_instant_arg
from chime.errors import ValidationError
from chime.validation import MAX_ID
from webapp.live import hub_for

FUZZ_SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NOT_FUZZED = {"admin.login", "admin.logout", "static"}  # signing out would end the fuzzing session
PATH_ARGUMENT = re.compile(r"<(?:[a-z]+:)?(\w+)>")

ODD_DIGITS = "0123456789²³¹٠١٢٣٤٥٦٧٨٩０１２３４５６７８９߀𝟎𝟗"
LARGE_INTEGERS = st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**20, 10**40])
INTEGER_TEXT = st.one_of(
    st.integers(min_value=-3, max_value=5).map(str),
    LARGE_INTEGERS.map(str),
    st.text(alphabet=ODD_DIGITS, min_size=1, max_size=25),
    st.sampled_from(["", " ", "+1", "-0", "1.5", "1e3", "0x10", "1_000", "nan", "inf", "9" * 5000]),
)
YEARS = st.sampled_from([0, 1, 1969, 2026, 9999, 10000, 99999])
DATE_TEXT = st.one_of(
    st.builds(lambda y, m, d, h, mi: f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}",
              YEARS, st.integers(0, 13), st.integers(0, 45), st.integers(0, 25), st.integers(0, 61)),
    st.builds(lambda y, offset: f"{y:04d}-01-01T00:00:00{offset}", YEARS,
              st.sampled_from(["Z", "+14:00", "-12:00", "+23:59", "+24:00", ""])),
    st.sampled_from(["0001-01-01", "9999-12-31T23:59:59", "2026-13-45", "2026-02-30", "٢٠٢٦-01-01", "20260101",
                     "2026-W01", "now", "yesterday"]),
)
TEXT = st.text(max_size=40)
ANY_VALUE = st.one_of(INTEGER_TEXT, DATE_TEXT, TEXT)
ZONES = st.sampled_from(["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "Etc/GMT-14", "Mars/Olympus", "", "../../etc"])
QUERY_NAMES = ("page", "task", "task_id", "since", "until", "from", "tz", "timezone", "status", "trigger", "range",
               "q", "search", "type", "enabled", "unread", "show", "limit", "offset", "count", "cron",
               "schedule_type", "interval_seconds", "run_at", "start_at", "end_at")
QUERY_VALUES = {"tz": ZONES, "timezone": ZONES, "since": DATE_TEXT, "until": DATE_TEXT, "from": DATE_TEXT,
                "run_at": DATE_TEXT, "start_at": DATE_TEXT, "end_at": DATE_TEXT,
                "schedule_type": st.sampled_from(["ONE_TIME", "CRON", "INTERVAL", "", "other"]),
                "cron": st.sampled_from(["* * * * *", "0 0 31 2 *", "@daily", "61 * * * *", ""])}


def rules_of(app: Any, method: str, prefix: str) -> list[Any]:
    return sorted((rule for rule in app.url_map.iter_rules()
                   if method in (rule.methods or ()) and rule.endpoint.startswith(prefix)
                   and rule.endpoint not in NOT_FUZZED), key=lambda rule: rule.rule)


# The ids a route's path holds; a name not listed here (a route added later) gets the same kind of value.
PATH_ARGUMENTS = ("task_id", "execution_id", "notification_id", "channel_id", "user_id", "token_id", "rule_id",
                  "any_id")


def fill_path(rule: Any, values: dict[str, str]) -> str:
    return PATH_ARGUMENT.sub(lambda match: quote(values.get(match.group(1), values["any_id"]), safe=""), rule.rule)


@st.composite
def path_values(draw: Any) -> dict[str, str]:
    """A value for every path argument name of the app: mostly small ids that exist, some hostile."""
    existing = st.integers(min_value=1, max_value=3).map(str)
    values = {name: draw(st.one_of(existing, INTEGER_TEXT)) for name in PATH_ARGUMENTS}
    values["job_id"] = draw(st.one_of(st.just("chime-reconcile-requested"), INTEGER_TEXT, TEXT))  # a reconcile pass
    values["queue"] = draw(st.one_of(st.sampled_from(["default", "high", "low", "alerts"]), TEXT))
    return values


@st.composite
def query_strings(draw: Any) -> str:
    names = draw(st.lists(st.sampled_from(QUERY_NAMES), max_size=4, unique=True))
    return urlencode({name: draw(QUERY_VALUES.get(name, ANY_VALUE)) for name in names})


@pytest.fixture
def seeded(admin: AdminClient) -> Iterator[AdminClient]:
    """Three tasks, runs and notifications, so small ids reach real rows; afterwards no live stream the
    fuzz opened (GET /events) is left in the hub: every response was closed."""
    for n in range(1, 4):
        task = add_task(f"task-{n}")
        add_execution(task, "FAILED" if n == 2 else "SUCCESS")
        add_notification(task=task)
    yield admin
    assert hub_for(admin.client.application.config["REDIS_URL"]).open_streams() == 0


def assert_not_a_server_error(response: Any, what: str) -> None:
    """4xx for bad input; 503 is an answer too (health reports a stopped scheduler), 500 never."""
    status = response.status_code
    assert status < 500 or status == 503, f"{what} answered {status}: {response.get_data(as_text=True)[:300]}"
    response.close()  # a live stream (GET /events) leaves its hub when closed, as a browser's does


@FUZZ_SETTINGS
@given(data=st.data(), values=path_values(), query=query_strings())
def test_no_admin_or_api_page_answers_500_to_odd_ids_and_query_strings(
        seeded: AdminClient, data: Any, values: dict[str, str], query: str) -> None:
    app = seeded.client.application
    rule = data.draw(st.sampled_from(rules_of(app, "GET", "admin.") + rules_of(app, "GET", "api.")), label="route")
    url = fill_path(rule, values) + ("?" + query if query else "")
    headers = AUTH if rule.endpoint.startswith("api.") else {}
    assert_not_a_server_error(seeded.client.get(url, headers=headers), f"GET {url}")


FORM_FIELDS = {
    "name": TEXT, "description": TEXT,
    "job": st.sampled_from(["noop", "echo", "fail", "sleep", "http_request", "shell", "nope", ""]),
    "schedule_type": st.sampled_from(["ONE_TIME", "CRON", "INTERVAL", "", "WEEKLY"]),
    "cron": st.sampled_from(["*/5 * * * *", "0 9 * * 1-5", "0 0 31 2 *", "@hourly", "* * *", ""]),
    "run_at": DATE_TEXT, "start_at": DATE_TEXT, "end_at": DATE_TEXT, "timezone": ZONES,
    "interval_seconds": INTEGER_TEXT, "max_retries": INTEGER_TEXT, "retry_backoff_seconds": INTEGER_TEXT,
    "timeout_seconds": INTEGER_TEXT, "misfire_grace_seconds": INTEGER_TEXT,
    "overlap": st.sampled_from(["SKIP", "ALLOW", "x"]), "queue": st.sampled_from(["high", "default", "low", "x"]),
    "notify": st.sampled_from(["ALWAYS", "ON_FAILURE", "NEVER", "x"]), "enabled": st.sampled_from(["on", ""]),
    "depends_on": INTEGER_TEXT, "next": st.one_of(TEXT, st.sampled_from(["//evil.example", "/\t/evil.example"])),
    "args.echo.message": TEXT, "args.sleep.seconds": INTEGER_TEXT, "args.fail.times": INTEGER_TEXT,
    "args.http_request.url": TEXT, "args.http_request.headers": TEXT, "args.http_request.expected_statuses": TEXT,
}


@st.composite
def form_data(draw: Any) -> dict[str, str]:
    names = draw(st.lists(st.sampled_from(sorted(FORM_FIELDS)), min_size=1, max_size=12, unique=True))
    return {name: draw(FORM_FIELDS[name]) for name in names}


@FUZZ_SETTINGS
@given(data=st.data(), values=path_values(), form=form_data())
def test_no_admin_form_answers_500_to_odd_field_values(
        seeded: AdminClient, data: Any, values: dict[str, str], form: dict[str, str]) -> None:
    rule = data.draw(st.sampled_from(rules_of(seeded.client.application, "POST", "admin.")), label="form")
    url = fill_path(rule, values)
    assert_not_a_server_error(seeded.post(url, form), f"POST {url} {form!r}")


# ---------------------------------------------------------------------------- every argument a page reads

HOSTILE_VALUES = ("²", "٣٠", "-1", str(2**31), "99999999999999999999", "0000-01-01", "2026-13-45",
                  "0001-01-01T00:00", "9999-12-31T23:59:59-12:00", "x\x00y")
# One job argument per input kind (text, number, JSON) stands for the fields of every job.
ARGUMENT_FIELDS_FUZZED = {"args.echo.message", "args.sleep.seconds", "args.http_request.headers"}


class RecordingArgs(ImmutableMultiDict):
    """Query and form arguments that remember every name the app asks them for."""

    names: set[str] = set()

    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:  # noqa: A002 - werkzeug's name
        RecordingArgs.names.add(key)
        return super().get(key, default, type)

    def __getitem__(self, key: Any) -> Any:
        RecordingArgs.names.add(key)
        return super().__getitem__(key)

    def getlist(self, key: Any, type: Any = None) -> Any:  # noqa: A002
        RecordingArgs.names.add(key)
        return super().getlist(key, type)

    def __contains__(self, key: Any) -> bool:
        RecordingArgs.names.add(key)
        return super().__contains__(key)


def names_read(request: Callable[[], Any]) -> set[str]:
    """The argument names a route reads on an ordinary request (read even when absent)."""
    RecordingArgs.names = set()
    request().close()  # a live stream (GET /events) leaves its hub when closed, as a browser's does
    return set(RecordingArgs.names) - {"csrf_token"}


@pytest.fixture
def recording(seeded: AdminClient) -> AdminClient:
    app = seeded.client.application
    app.request_class = type("RecordingRequest", (app.request_class,), {"parameter_storage_class": RecordingArgs})
    return seeded


def test_every_query_argument_of_every_page_refuses_hostile_values_without_500(recording: AdminClient) -> None:
    app = recording.client.application
    for rule in rules_of(app, "GET", "admin.") + rules_of(app, "GET", "api."):
        headers = AUTH if rule.endpoint.startswith("api.") else {}
        url = fill_path(rule, {name: "1" for name in PATH_ARGUMENTS})
        for name in sorted(names_read(lambda: recording.get(url, headers=headers))):
            for value in HOSTILE_VALUES:
                query = urlencode({name: value})
                assert_not_a_server_error(recording.get(f"{url}?{query}", headers=headers), f"GET {url}?{query}")
        for value in HOSTILE_VALUES:
            hostile_url = fill_path(rule, {name: value for name in PATH_ARGUMENTS})
            assert_not_a_server_error(recording.get(hostile_url, headers=headers), f"GET {hostile_url}")


def test_every_field_of_every_form_refuses_hostile_values_without_500(recording: AdminClient) -> None:
    app = recording.client.application
    for rule in rules_of(app, "POST", "admin."):
        url = fill_path(rule, {name: "1" for name in PATH_ARGUMENTS})
        names = names_read(lambda: recording.post(url, {"job": "echo", "schedule_type": "INTERVAL"}))
        assert rule.endpoint != "admin.task_new" or {"name", "interval_seconds", "depends_on"} <= names
        for name in sorted(n for n in names if not n.startswith("args.") or n in ARGUMENT_FIELDS_FUZZED):
            for value in HOSTILE_VALUES:
                form = {"name": f"hostile {name} {value[:20]!r}", "job": "echo", "schedule_type": "INTERVAL",
                        "interval_seconds": "60", name: value}
                assert_not_a_server_error(recording.post(url, form), f"POST {url} {name}={value[:30]!r}")


EMAIL_CHANNEL_FORM = {"kind": "email", "name": "mail", "enabled": "on", "host": "smtp.example.com", "port": "587",
                      "security": "starttls", "from_address": "chime@example.com", "to": "ops@example.com",
                      "timeout_seconds": "30", "muted_until": ""}


def test_every_field_of_the_email_channel_form_refuses_hostile_values_without_500(recording: AdminClient) -> None:
    """The generic walk above posts a task's fields; an e-mail channel reads fields of its own (port, timeout)."""
    created = recording.post("/channels", EMAIL_CHANNEL_FORM)
    assert created.status_code == 302, created.get_data(as_text=True)[:500]
    for url in ("/channels", created.headers["Location"].rsplit("?", 1)[0] + "/edit"):
        names = names_read(lambda: recording.post(url, EMAIL_CHANNEL_FORM))
        assert {"port", "timeout_seconds", "muted_until", "host", "to"} <= names
        for name in sorted(names - {"kind"}):
            for value in HOSTILE_VALUES:
                form = {**EMAIL_CHANNEL_FORM, "name": f"hostile {name} {value[:20]!r}", name: value}
                assert_not_a_server_error(recording.post(url, form), f"POST {url} {name}={value[:30]!r}")


def test_the_fuzz_reaches_every_admin_page_and_form(app: Any) -> None:
    gets = {rule.endpoint for rule in rules_of(app, "GET", "admin.")}
    posts = {rule.endpoint for rule in rules_of(app, "POST", "admin.")}
    assert {"admin.dashboard", "admin.task_list", "admin.task_detail", "admin.log_list", "admin.log_detail",
            "admin.notification_list", "admin.task_preview"} <= gets
    assert {"admin.task_new", "admin.task_edit", "admin.task_toggle", "admin.task_run", "admin.task_delete",
            "admin.notification_read", "admin.notification_read_all"} <= posts


# ---------------------------------------------------------------------------- the parser itself


@settings(max_examples=300, deadline=None)
@given(maximum=st.integers(min_value=1, max_value=2**63), value=st.integers(min_value=-10, max_value=2**64))
def test_the_id_pattern_matches_exactly_the_numbers_from_one_to_the_maximum(maximum: int, value: int) -> None:
    pattern = re.compile(digits_up_to(maximum))
    for candidate in (value, maximum, maximum + 1, maximum - 1, value % (maximum + 1)):
        assert bool(pattern.fullmatch(str(candidate))) == (1 <= candidate <= maximum), (maximum, candidate)


@pytest.mark.parametrize("text,expected", [("1", 1), (" 42 ", 42), (str(MAX_ID), MAX_ID)])
def test_an_id_in_range_written_in_ascii_digits_is_read(text: str, expected: int) -> None:
    assert parse_id(text, "task") == expected


@pytest.mark.parametrize("text", ["0", "-1", str(MAX_ID + 1), str(2**63), "²", "٣٠", "３０", "1.0", "1e3", "", "9" * 5000])
def test_anything_else_is_a_validation_error_naming_the_argument(text: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_id(text, "task")
    assert set(raised.value.fields or {}) == {"task"}


@pytest.mark.parametrize("text", ["0000-01-01", "99999-01-01", "2026-13-45", "2026-02-30", "0001-01-01T00:00+14:00",
                                  "٢٠٢٦-01-01", "tomorrow"])
def test_a_date_no_column_can_hold_is_a_validation_error(text: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_instant_arg(text, "since")
    assert set(raised.value.fields or {}) == {"since"}
