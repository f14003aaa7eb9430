"""The example package's jobs (examples/chime-example-jobs, README "Your own jobs"): a greeting, and a
line appended once per occurrence however often it is attempted (the context's idempotency key)."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import jobs.registry as registry
from jobs.registry import ArgsError, JobContext

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chime-example-jobs"
AT = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def example_jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example module imported from its source folder, registered only for the test."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    with registry.temporary():
        importlib.import_module("chime_example_jobs")
        yield
    sys.modules.pop("chime_example_jobs", None)


def context(attempt: int = 1, at: datetime = AT, trigger: str = "SCHEDULE") -> JobContext:
    return JobContext(task_id=3, execution_id=attempt, attempt=attempt, scheduled_for=at, task_name="nightly",
                      trigger=trigger)


def test_the_greeting_job_takes_an_optional_name() -> None:
    assert registry.run("example_greet", {}) == {"greeting": "Hello, world!"}
    assert registry.run("example_greet", {"name": "Ada"}) == {"greeting": "Hello, Ada!"}
    with pytest.raises(ArgsError, match="name: must be a string"):
        registry.run("example_greet", {"name": 7})


def test_append_once_shows_its_arguments_but_not_its_context() -> None:
    names = [(p.name, p.required) for p in registry.get("example_append_once").parameters]
    assert names == [("path", True), ("line", True), ("fail_first_attempt", False)]


def test_every_attempt_of_one_occurrence_appends_one_line(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    args = {"path": str(path), "line": "report sent"}

    first = registry.run("example_append_once", args, context=context(attempt=1))
    retry = registry.run("example_append_once", args, context=context(attempt=2, trigger="RETRY"))

    assert first["written"] is True and retry["written"] is False
    assert path.read_text() == "chime-3-20261130T120000.000000Z nightly attempt 1 (SCHEDULE): report sent\n"


def test_another_occurrence_appends_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    args = {"path": str(path), "line": "report sent"}

    registry.run("example_append_once", args, context=context())
    registry.run("example_append_once", args, context=context(at=AT + timedelta(minutes=1)))

    assert [line.split(" ")[0] for line in path.read_text().splitlines()] == [
        "chime-3-20261130T120000.000000Z", "chime-3-20261130T120100.000000Z"]


def test_a_first_attempt_that_fails_after_writing_is_not_written_again_by_its_retry(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    args = {"path": str(path), "line": "charged", "fail_first_attempt": True}

    with pytest.raises(RuntimeError, match="failed after writing"):
        registry.run("example_append_once", args, context=context(attempt=1))
    assert registry.run("example_append_once", args, context=context(attempt=2))["written"] is False

    assert len(path.read_text().splitlines()) == 1
