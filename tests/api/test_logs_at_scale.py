"""The log's shapes for ten million rows (issue 14), at a size a test can hold: the count stops at a
limit and says so, paging still reaches every row once, a search reads a bounded window of the newest
rows, and SQLite's fast search answers what the Unicode lower-casing answers. SQLite and Postgres."""
from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from chime.extensions import db
from chime.models import Task
from tests.api.test_log_search_and_export import NOW, add_run, add_task, found
from webapp import queries


@pytest.fixture
def nightly() -> Task:
    return add_task("Nightly backup")


@pytest.fixture
def count_limit_of_5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "LOG_COUNT_LIMIT", 5)


def every_page(api: Any, path: str) -> list[dict[str, Any]]:
    bodies = []
    while path:
        response = api.get(path)
        assert response.status_code == 200, response.get_json()
        bodies.append(response.get_json())
        path = bodies[-1]["next"]
    return bodies


def test_a_log_of_fewer_rows_than_the_limit_is_counted_exactly(api: Any, nightly: Task, count_limit_of_5: None) -> None:
    for _ in range(5):
        add_run(nightly)

    body = api.get("/api/logs/").get_json()

    assert (body["count"], body["count_exact"], body["next"]) == (5, True, None)


def test_past_the_limit_the_count_is_a_lower_bound_and_says_so_until_the_last_page(api: Any, nightly: Task, count_limit_of_5: None) -> None:
    for _ in range(8):
        add_run(nightly)

    first = api.get("/api/logs/?limit=3").get_json()
    last = api.get("/api/logs/?limit=3&offset=6").get_json()

    assert (first["count"], first["count_exact"], len(first["results"])) == (5, False, 3)
    assert first["next"] is not None
    assert (last["count"], last["count_exact"], len(last["results"]), last["next"]) == (8, True, 2, None)


def test_following_next_past_the_limit_reaches_every_run_once(api: Any, nightly: Task, count_limit_of_5: None) -> None:
    runs = [add_run(nightly) for _ in range(12)]

    pages = every_page(api, "/api/logs/?limit=4")

    assert [row["id"] for body in pages for row in body["results"]] == sorted(runs, reverse=True)


def test_runs_added_while_paging_push_older_ones_on_and_none_is_lost(
        api: Any, nightly: Task, count_limit_of_5: None) -> None:
    runs = [add_run(nightly) for _ in range(9)]
    first = api.get("/api/logs/?limit=3").get_json()
    add_run(nightly)
    add_run(nightly)

    rest = every_page(api, first["next"])

    seen = [row["id"] for row in first["results"]] + [row["id"] for body in rest for row in body["results"]]
    assert set(runs) <= set(seen)


def test_notifications_are_counted_up_to_the_limit_too(api: Any, nightly: Task, count_limit_of_5: None) -> None:
    from chime.models import Notification

    for index in range(7):
        db.session.add(Notification(task_id=nightly.id, level="ERROR", title=f"failed {index}", message=""))
    db.session.commit()

    body = api.get("/api/notifications/?limit=2").get_json()
    unread = api.get("/api/notifications/?unread=true&limit=10").get_json()

    assert (body["count"], body["count_exact"]) == (5, False)
    assert (unread["count"], unread["count_exact"], len(unread["results"])) == (7, True, 7)


def test_the_task_list_is_counted_exactly(api: Any, count_limit_of_5: None) -> None:
    for index in range(7):
        add_task(f"task {index}")

    body = api.get("/api/tasks/?limit=2").get_json()

    assert (body["count"], body["count_exact"]) == (7, True)


# --------------------------------------------------------------------------- the search window


def test_a_search_reads_the_newest_runs_of_the_window(api: Any, nightly: Task, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "LOG_SEARCH_WINDOW_ROWS", 3)
    old_match = add_run(nightly, "disk full")
    add_run(nightly, "ok")
    new_match = add_run(nightly, "disk full")
    add_run(nightly, "ok")

    assert found(api, "disk") == [new_match]
    assert old_match not in found(api, "disk")


def test_the_other_filters_choose_the_window_a_search_reads(
        api: Any, nightly: Task, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "LOG_SEARCH_WINDOW_ROWS", 2)
    other = add_task("Other")
    old_failure = add_run(nightly, "disk full", status="FAILED")
    for _ in range(4):
        add_run(other, "disk full", status="SUCCESS")

    assert found(api, "disk", status="FAILED") == [old_failure]
    assert found(api, "disk", task_id=nightly.id) == [old_failure]
    assert old_failure not in found(api, "disk")


def test_a_search_queries_its_window_by_an_id_bound_the_planner_can_read(
        app: Any, nightly: Task, monkeypatch: pytest.MonkeyPatch) -> None:
    """The window's bound goes into the search as a number: a subquery hid from Postgres how few rows
    the search reads, so it planned every search for the whole log (JIT and parallel workers)."""
    monkeypatch.setattr(queries, "LOG_SEARCH_WINDOW_ROWS", 2)
    runs = [add_run(nightly, "disk full") for _ in range(3)]

    window = queries.search_window([])

    assert window.right.value == runs[1]
    assert "OFFSET" not in str(queries.execution_query(queries.ExecutionFilters(search="disk")))


def test_the_export_searches_the_whole_log(api: Any, nightly: Task, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "LOG_SEARCH_WINDOW_ROWS", 1)
    old_match = add_run(nightly, "disk full")
    add_run(nightly, "ok")

    response = api.get("/api/logs/export/", query_string={"search": "disk", "format": "JSON"})

    assert [row["id"] for row in response.get_json()] == [old_match]


# --------------------------------------------------------------------------- what a search matches

MESSAGES = ("plain ascii text", "KELVIN \u212a degrees", "\u0130stanbul office", "Straße", "ΟΔΟΣ closed",
            "tab\tseparated", "ÉCOLE", "école", "new\nline", "Ǆemal", "ﬁle system", "résumé")
SEARCHES = ("k", "kelvin k", "i̇stanbul", "istanbul", "strasse", "straße", "οδος", "οδοσ", "tab\tsep", "école",
            "ecole", "line", "ǆ", "ǅemal", "file", "ﬁle", "RÉSUMÉ", "sum")


def test_a_search_matches_what_python_lower_casing_matches(api: Any) -> None:
    task = add_task("Q")
    ids = {add_run(task, message): message for message in MESSAGES}

    for search in SEARCHES:
        expected = sorted((i for i, message in ids.items()
                           if search.lower() in message.lower() or search.lower() in task.name.lower()),
                          reverse=True)
        assert found(api, search) == expected, search


# --------------------------------------------------------------------------- a period that ends (until)


@pytest.fixture
def plan_rows_of_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "PERIOD_PLAN_ROWS", 3)


def period(minutes_ago_from: int, minutes_ago_to: int, **filters: Any) -> queries.ExecutionFilters:
    return queries.ExecutionFilters(since=NOW - timedelta(minutes=minutes_ago_from),
                                    until=NOW - timedelta(minutes=minutes_ago_to), **filters)


def period_pages(api: Any, filters: queries.ExecutionFilters, limit: int) -> list[list[int]]:
    path = f"/api/logs/?since={quote(filters.since.isoformat())}&until={quote(filters.until.isoformat())}&limit={limit}"
    return [[row["id"] for row in body["results"]] for body in every_page(api, path)]


def test_a_period_with_many_runs_after_it_is_paged_newest_id_first_from_its_own_rows(
        api: Any, nightly: Task, plan_rows_of_3: None) -> None:
    first, second, third = (add_run(nightly, minutes_ago=m) for m in (65, 62, 61))
    stored_late = add_run(nightly, minutes_ago=64)  # created before `second`, stored after `third`
    for minutes_ago in (30, 20, 10, 5):
        add_run(nightly, minutes_ago=minutes_ago)
    add_run(nightly, minutes_ago=90)

    assert queries.sorts_the_period(period(70, 60))
    assert period_pages(api, period(70, 60), limit=3) == [[stored_late, third, second], [first]]


def test_a_period_with_few_runs_after_it_walks_the_ids_and_pages_the_same(
        api: Any, nightly: Task, plan_rows_of_3: None) -> None:
    first, second, third = (add_run(nightly, minutes_ago=m) for m in (65, 62, 61))
    stored_late = add_run(nightly, minutes_ago=64)
    add_run(nightly, minutes_ago=5)

    assert not queries.sorts_the_period(period(70, 60))
    assert period_pages(api, period(70, 60), limit=3) == [[stored_late, third, second], [first]]


def test_when_both_hold_many_runs_the_shorter_span_of_time_is_read(app: Any, nightly: Task, plan_rows_of_3: None) -> None:
    for minutes_ago in (100, 90, 80, 70, 50, 40, 30, 20):
        add_run(nightly, minutes_ago=minutes_ago)

    assert queries.sorts_the_period(period(75, 60), now=NOW)  # 1 run in it, 4 after it: the counts decide
    assert queries.sorts_the_period(period(110, 60), now=NOW)  # 50 minutes in the period, 60 after it
    assert not queries.sorts_the_period(period(200, 45), now=NOW)  # 155 minutes in it, 45 after it
    assert not queries.sorts_the_period(period(75, 60, search="x"), now=NOW)  # a search keeps its own window


def test_the_choice_counts_runs_by_time_alone_whatever_the_other_filters(
        app: Any, nightly: Task, plan_rows_of_3: None) -> None:
    for minutes_ago in (65, 64, 63, 30, 20, 10):
        add_run(nightly, minutes_ago=minutes_ago)

    # no MANUAL run at all: counting MANUAL runs after the period would read every run after it
    assert queries.sorts_the_period(period(70, 60, trigger="MANUAL"), now=NOW) == \
        queries.sorts_the_period(period(70, 60), now=NOW)
