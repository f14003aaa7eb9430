"""Searching the execution log and exporting it as CSV and JSON, on SQLite and Postgres."""
from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, insert

from chime.enums import Role
from chime.extensions import db
from chime.models import Execution, Task
from tests.roles.test_route_roles import token_for

NOW = datetime.now(timezone.utc).replace(microsecond=0)
OCCURRENCES = itertools.count()


def add_task(name: str) -> Task:
    task = Task(name=name, job="echo", args={}, schedule_type="INTERVAL", interval_seconds=60, timezone="UTC")
    db.session.add(task)
    db.session.commit()
    return task


def add_run(task: Task, message: str = "", *, status: str = "SUCCESS", minutes_ago: int = 0, **fields: Any) -> int:
    """Store one run (each its own occurrence) and return its id."""
    when = NOW - timedelta(minutes=minutes_ago)
    execution = Execution(task_id=task.id, task_name=task.name, status=status, attempt=1, trigger="SCHEDULE",
                          scheduled_for=when - timedelta(microseconds=next(OCCURRENCES)), created_at=when,
                          message=message, **fields)
    db.session.add(execution)
    db.session.commit()
    return execution.id


@pytest.fixture
def nightly() -> Task:
    return add_task("Nightly backup")


@pytest.fixture
def report() -> Task:
    return add_task("Rapport für Café")


def found(api: Any, search: str, path: str = "/api/logs/", **filters: Any) -> list[int]:
    response = api.get(path, query_string={"search": search, **filters})
    assert response.status_code == 200, response.get_json()
    return [row["id"] for row in response.get_json()["results"]]


# --------------------------------------------------------------------------- search


def test_search_finds_text_in_the_message_in_any_case(api: Any, nightly: Task) -> None:
    disk = add_run(nightly, "Disk full on /var")
    add_run(nightly, "all good")

    assert found(api, "DISK FULL") == [disk]
    assert found(api, "disk full") == [disk]


def test_search_finds_the_task_name_of_the_run(api: Any, nightly: Task, report: Task) -> None:
    first = add_run(nightly, "ok")
    second = add_run(nightly, "ok")
    add_run(report, "ok")

    assert found(api, "nightly") == [second, first]


def test_search_folds_the_case_of_non_ascii_letters_the_same_on_both_databases(
        api: Any, nightly: Task, report: Task) -> None:
    ecole = add_run(nightly, "ÉCOLE unreachable")
    strasse = add_run(nightly, "Straße gesperrt")
    greek = add_run(nightly, "ΑΘΗΝΑ timeout")
    add_run(nightly, "ecole without an accent")
    cafe = add_run(report, "sent")

    assert found(api, "école") == [ecole]
    assert found(api, "ÉCOLE") == [ecole]
    assert found(api, "STRAßE") == [strasse]
    assert found(api, "αθηνα") == [greek]
    assert found(api, "FÜR CAFÉ") == found(api, "für café") == [cafe]


def test_percent_underscore_and_backslash_are_literal_characters(api: Any, nightly: Task) -> None:
    percent = add_run(nightly, "disk at 100% now")
    underscore = add_run(nightly, "missing file a_b.txt")
    backslash = add_run(nightly, r"path C:\temp not found")
    add_run(nightly, "disk at 1000 now, file axb.txt, C:temp")

    assert found(api, "100%") == [percent]
    assert found(api, "%") == [percent]
    assert found(api, "a_b") == [underscore]
    assert found(api, "_") == [underscore]
    assert found(api, "\\") == [backslash]
    assert found(api, r"C:\temp") == [backslash]


def test_search_combines_with_the_other_filters(api: Any, nightly: Task, report: Task) -> None:
    failed_now = add_run(nightly, "timeout", status="FAILED")
    add_run(nightly, "timeout", status="SUCCESS")
    add_run(nightly, "timeout", status="FAILED", minutes_ago=120)
    add_run(report, "timeout", status="FAILED")
    since = (NOW - timedelta(minutes=60)).isoformat()

    assert found(api, "timeout", status="failed", task_id=nightly.id, since=since) == [failed_now]
    assert found(api, "TIMEOUT", f"/api/tasks/{nightly.id}/logs/", status="FAILED", since=since) == [failed_now]


def test_a_search_longer_than_200_characters_is_cut_to_its_first_200(api: Any, nightly: Task) -> None:
    long_message = add_run(nightly, "x" * 200)

    assert found(api, "x" * 200 + "this part is ignored") == [long_message]


@pytest.mark.parametrize("path", ["/api/logs/", "/api/logs/export/"])
def test_a_search_with_a_nul_character_is_a_400(api: Any, path: str) -> None:
    response = api.get(path, query_string={"search": "a\x00b"})

    assert response.status_code == 400
    assert "search" in response.get_json()["fields"]


# --------------------------------------------------------------------------- export


def export(api: Any, **args: Any) -> Any:
    response = api.get("/api/logs/export/", query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response


def csv_rows(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_the_csv_export_holds_exactly_the_filtered_runs_newest_first(api: Any, nightly: Task, report: Task) -> None:
    older = add_run(nightly, "timeout after 30 s", status="FAILED", duration_ms=30000)
    newer = add_run(report, "Timeout again", status="FAILED", worker="w1")
    add_run(nightly, "timeout", status="SUCCESS")
    add_run(nightly, "fine", status="FAILED")

    response = export(api, format="csv", search="timeout", status="FAILED")
    rows = csv_rows(response)

    assert response.mimetype == "text/csv"
    assert [int(row["id"]) for row in rows] == [newer, older]
    assert rows[0]["task_name"] == "Rapport für Café" and rows[0]["worker"] == "w1"
    assert rows[1]["message"] == "timeout after 30 s" and rows[1]["duration_ms"] == "30000"
    assert rows[1]["status"] == "FAILED" and rows[1]["retry_at"] == ""


def test_the_json_export_is_one_array_of_the_runs_as_the_log_list_shows_them(api: Any, nightly: Task) -> None:
    first = add_run(nightly, "ok", result={"rows": 3})
    second = add_run(nightly, "ok again")
    add_run(nightly, "other")

    response = export(api, format="json", search="ok")
    body = json.loads(response.get_data(as_text=True))

    assert response.mimetype == "application/json"
    assert [row["id"] for row in body] == [second, first]
    assert body == api.get("/api/logs/", query_string={"search": "ok"}).get_json()["results"]


def test_an_export_of_nothing_is_an_empty_list(api: Any) -> None:
    assert json.loads(export(api, format="json").get_data(as_text=True)) == []
    assert csv_rows(export(api, format="csv")) == []


def test_the_export_is_an_attachment_named_by_its_format(api: Any) -> None:
    csv_download = export(api).headers["Content-Disposition"]
    json_download = export(api, format="JSON").headers["Content-Disposition"]

    assert csv_download.startswith("attachment; filename=") and csv_download.endswith('.csv"')
    assert json_download.startswith("attachment; filename=") and json_download.endswith('.json"')


def test_an_unknown_export_format_is_a_400(api: Any) -> None:
    response = api.get("/api/logs/export/", query_string={"format": "xlsx"})

    assert response.status_code == 400 and "format" in response.get_json()["fields"]


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_start_with_an_apostrophe(
        api: Any, nightly: Task) -> None:
    for message in ("=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\tindented", "plain = text"):
        add_run(nightly, message)

    messages = [row["message"] for row in csv_rows(export(api, format="csv"))]

    assert sorted(messages) == sorted(["'=HYPERLINK(\"http://evil\")", "'+1+1", "'-2+3", "'@SUM(A1)",
                                       "'\tindented", "plain = text"])


def test_a_viewer_may_export(client: Any, nightly: Task) -> None:
    add_run(nightly, "ok")

    response = client.get("/api/logs/export/?format=json", headers=token_for(Role.VIEWER))

    assert response.status_code == 200 and len(json.loads(response.get_data(as_text=True))) == 1


# --------------------------------------------------------------------------- streaming


def add_many_runs(task: Task, count: int) -> None:
    start = NOW - timedelta(days=1)
    db.session.execute(insert(Execution), [
        {"task_id": task.id, "task_name": task.name, "status": "SUCCESS", "attempt": 1, "trigger": "SCHEDULE",
         "scheduled_for": start + timedelta(seconds=i), "created_at": start + timedelta(seconds=i),
         "message": f"run {i}"} for i in range(count)])
    db.session.commit()


@contextmanager
def log_reads() -> Iterator[list[tuple[str, Any]]]:
    """The SELECT statements on the executions table run meanwhile, with their parameters."""
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM executions" in statement:
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_an_export_of_5000_runs_is_streamed_in_batches_of_1000_read_by_id_not_offset(
        client: Any, nightly: Task, file_format: str) -> None:
    add_many_runs(nightly, 5000)

    with log_reads() as reads:
        response = client.get(f"/api/logs/export/?format={file_format}", headers=token_for(Role.VIEWER),
                              buffered=False)
        assert response.is_streamed
        chunks = iter(response.response)
        first_rows = b""
        while b"run 4999" not in first_rows:  # the newest run comes first
            first_rows += next(chunks)
        reads_before_the_first_rows_were_sent = len(reads)
        body = first_rows + b"".join(chunks)
        response.close()

    assert reads_before_the_first_rows_were_sent == 1
    assert len(reads) == 6  # five full batches, then one that finds nothing more
    assert all("LIMIT" in statement for statement, _ in reads)
    # each batch after the first starts below the last id sent (keyset); SQLite's dialect writes
    # "LIMIT ? OFFSET ?" with an offset of 0, Postgres' no OFFSET: no batch skips rows it has read
    assert ["executions.id <" in statement for statement, _ in reads] == [False] + [True] * 5
    assert all("OFFSET" not in statement or parameters[-1] == 0 for statement, parameters in reads)
    text = body.decode()
    messages = ([row["message"] for row in json.loads(text)] if file_format == "json"
                else [row["message"] for row in csv.DictReader(io.StringIO(text))])
    assert messages == [f"run {i}" for i in reversed(range(5000))]
