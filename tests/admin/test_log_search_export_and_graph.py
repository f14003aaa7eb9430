"""The admin's log search, its export links and the dependency graph page, on SQLite and Postgres."""
from __future__ import annotations

import csv
import html
import io
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chime.enums import Role
from chime.extensions import db
from chime.models import Task
from tests.admin.conftest import add_execution, add_task, sign_in
from tests.api.test_task_graph import add_chain
from webapp.auth import create_user


def test_the_log_search_finds_message_and_task_name_in_any_case(admin: Any) -> None:
    backup = add_task("Nightly Backup")
    other = add_task("report")
    add_execution(backup, message="all fine", minutes_ago=3)
    add_execution(other, message="Disk FULL on /var", minutes_ago=2)
    add_execution(other, message="all fine", minutes_ago=1)

    by_name = admin.html("/logs?q=nightly")
    by_message = admin.html("/logs?q=disk%20full")

    assert by_name.count("data-run-id=") == 1 and "Nightly Backup" in by_name
    assert by_message.count("data-run-id=") == 1 and "Disk FULL on /var" in by_message


def test_the_search_box_keeps_the_search_and_the_page_stops_live_refresh(admin: Any) -> None:
    page = admin.html("/logs?q=100%25")

    assert 'name="q" type="search" value="100%"' in page
    assert "data-live-runs" not in page


def test_a_log_search_with_a_nul_character_is_a_400(admin: Any) -> None:
    assert admin.get("/logs?q=a%00b").status_code == 400


def export_links(page: str) -> dict[str, dict[str, list[str]]]:
    links = re.findall(r'href="([^"]+)"[^>]*data-export="(\w+)"', page)
    return {kind: parse_qs(urlsplit(html.unescape(href)).query) for href, kind in links}


def test_the_export_links_carry_the_current_filters_but_not_the_page(admin: Any) -> None:
    task = add_task("ping")

    links = export_links(admin.html(f"/logs?q=timeout&status=FAILED&task={task.id}&range=24h&page=2"))

    assert set(links) == {"csv", "json"}
    for kind, args in links.items():
        assert args == {"q": ["timeout"], "status": ["FAILED"], "task": [str(task.id)], "range": ["24h"],
                        "format": [kind]}


def test_the_export_holds_every_run_the_filters_select(admin: Any) -> None:
    task = add_task("ping")
    failed = [add_execution(task, "FAILED", message=f"timeout {i}", minutes_ago=10 - i).id for i in range(3)]
    add_execution(task, "SUCCESS", message="timeout but fine", minutes_ago=1)
    add_execution(task, "FAILED", message="other", minutes_ago=1)

    as_json = admin.get("/logs/export?format=json&q=TIMEOUT&status=FAILED")
    json_rows = json.loads(as_json.get_data(as_text=True))  # read each streamed body before the next request
    as_csv = admin.get("/logs/export?format=csv&q=TIMEOUT&status=FAILED")
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))

    assert as_json.status_code == 200 and as_json.headers["Content-Disposition"].startswith("attachment;")
    assert [row["id"] for row in json_rows] == failed[::-1]
    assert [int(row["id"]) for row in csv_rows] == failed[::-1]


def test_a_viewer_may_export_the_log_and_see_the_graph(app: Any, client: Any) -> None:
    create_user("watcher", "a long enough password", role=Role.VIEWER)
    sign_in(client, "watcher", "a long enough password")

    export = client.get("/logs/export?format=csv")
    assert export.status_code == 200 and export.get_data(as_text=True).startswith("id,")
    assert client.get("/tasks/graph").status_code == 200


# --------------------------------------------------------------------------- the dependency graph


def with_parents(task: Task, *parents: Task) -> Task:
    task.parents.extend(parents)
    db.session.commit()
    return task


def layer_of(page: str, name: str) -> int:
    """The level heading (1, 2, ...) under which a task's card is shown."""
    position = page.index(f">{name}</a>")
    return int(re.findall(r"Level (\d+)", page[:position])[-1])


def test_the_graph_shows_each_task_one_level_below_its_deepest_parent(admin: Any) -> None:
    extract = add_task("extract")
    transform = with_parents(add_task("transform"), extract)
    with_parents(add_task("load"), extract, transform)
    add_task("lone")

    page = admin.html("/tasks/graph")

    assert (layer_of(page, "extract"), layer_of(page, "transform"), layer_of(page, "load")) == (1, 2, 3)
    load_card = page[page.index(">load</a>"):]
    load_card = load_card[:load_card.index("</li>")]
    assert re.findall(r'data-parent-id="\d+">(\w+)<', load_card) == ["extract", "transform"]


def test_each_task_links_to_its_page_and_is_colored_by_its_latest_outcome(admin: Any) -> None:
    ok = add_task("ok-parent", last_status="SUCCESS")
    broken = with_parents(add_task("broken-child", last_status="FAILED"), ok)

    page = admin.html("/tasks/graph")

    assert f'href="/tasks/{ok.id}">ok-parent</a>' in page and f'href="/tasks/{broken.id}">broken-child</a>' in page
    assert re.search(rf'class="graph-node graph-success" id="task-{ok.id}"', page)
    assert re.search(rf'class="graph-node graph-failed" id="task-{broken.id}"', page)


def test_tasks_without_dependencies_are_collapsed_into_a_count(admin: Any) -> None:
    with_parents(add_task("child"), add_task("parent"))
    add_task("lone-1")
    add_task("lone-2")

    collapsed = admin.html("/tasks/graph")
    expanded = admin.html("/tasks/graph?isolated=true")

    assert "lone-1" not in collapsed and "2 tasks without dependencies not shown" in collapsed
    assert "lone-1" in expanded and "lone-2" in expanded


def test_the_graph_is_in_the_navigation(admin: Any) -> None:
    assert 'href="/tasks/graph" aria-current="page">Dependencies</a>' in admin.html("/tasks/graph")
    assert 'href="/tasks/graph">Dependencies</a>' in admin.html("/logs")


def test_with_10000_tasks_the_page_shows_the_first_1000_and_says_so(admin: Any) -> None:
    add_chain(10_000)

    page = admin.html("/tasks/graph")

    assert "Showing the first 1,000 of 10,000 tasks" in page
    assert page.count('<li class="graph-node ') == 1000
