"""Two small Chime jobs: a greeting, and a line appended to a file once per occurrence.

A job is a function decorated with @job("name"). Its typed parameters are the task's arguments
(Chime validates them in the API and the admin before the task is saved; a parameter with a default
is optional), its docstring's first line is its description, and what it returns (JSON) is the run's
result. A parameter annotated JobContext is not an argument: Chime passes the run's context to it.
"""
from __future__ import annotations

import fcntl

from jobs import JobContext, job


@job("example_greet")
def greet(name: str = "world") -> dict[str, str]:
    """Say hello: the smallest job there is."""
    return {"greeting": f"Hello, {name}!"}


@job("example_append_once")
def append_once(path: str, line: str, context: JobContext, fail_first_attempt: bool = False) -> dict[str, object]:
    """Append a line to a file once per occurrence, however often the occurrence is attempted.

    Each line starts with the run's idempotency key, which is the same for every attempt of one
    occurrence: a retry (or a second delivery after a lost worker) finds its line and writes nothing.
    fail_first_attempt raises after writing on attempt 1, as a job cut off after its effect would;
    give the task a retry to see the next attempt leave the file as it is.
    """
    key = context.idempotency_key or "no-occurrence"  # a run outside Chime's executor has no key
    with open(path, "a+", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # two attempts at once still write one line
        file.seek(0)
        written = not any(existing.split(" ", 1)[0] == key for existing in file)
        if written:
            file.write(f"{key} {context.task_name} attempt {context.attempt} ({context.trigger}): {line}\n")
            file.flush()
    if fail_first_attempt and context.attempt == 1:
        raise RuntimeError(f"failed after writing the line of {key} (fail_first_attempt)")
    return {"idempotency_key": key, "written": written, "attempt": context.attempt}
