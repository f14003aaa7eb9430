"""The admin's log pages at the size of issue 14, shrunk: a count that stops at its limit says "at least",
and the log's task filter lists a bounded number of tasks and always the one chosen."""
from __future__ import annotations

import re

import pytest

from tests.admin.conftest import AdminClient, add_execution, add_task
from webapp import queries


def task_options(html: str) -> list[str]:
    select = html.split('<select id="task"', 1)[1].split("</select>", 1)[0]
    return re.findall(r'<option value="(\d+)"', select)


def test_a_log_longer_than_the_count_limit_shows_at_least_and_no_last_page(
        admin: AdminClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "LOG_COUNT_LIMIT", 30)
    task = add_task()
    for n in range(60):
        add_execution(task, minutes_ago=n)

    first = admin.html("/logs")
    last = admin.html("/logs?page=3")

    assert "Showing 1–25 of at least 30 runs" in first and "Page 1</span>" in first
    assert 'rel="next"' in first
    assert "Showing 51–60 of 60 runs" in last and "Page 3 of 3" in last


def test_the_log_task_filter_lists_the_first_tasks_by_name_and_the_chosen_one(
        admin: AdminClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "MAX_TASK_CHOICES", 2)
    charlie = add_task("charlie")
    alpha = add_task("alpha")
    bravo = add_task("Bravo")

    listed = admin.html("/logs")
    chosen = admin.html(f"/logs?task={charlie.id}")

    assert task_options(listed) == [str(alpha.id), str(bravo.id)]
    assert "The first 2 tasks by name" in listed
    assert task_options(chosen) == [str(alpha.id), str(bravo.id), str(charlie.id)]
    assert f'<option value="{charlie.id}" selected>' in chosen


def test_with_few_tasks_the_log_task_filter_lists_them_all(admin: AdminClient) -> None:
    names = ["b", "a", "c"]
    ids = {name: add_task(name).id for name in names}

    listed = admin.html("/logs")

    assert task_options(listed) == [str(ids[name]) for name in sorted(names)]
    assert "tasks by name" not in listed
