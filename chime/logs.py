"""Structured logging: one line per event, key=value, with the task, execution and job ids in context."""
from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

LOG_FORMAT = ("%(asctime)s level=%(levelname)s logger=%(name)s task=%(task_id)s "
              "execution=%(execution_id)s job=%(job_id)s %(message)s")
CONTEXT_FIELDS = ("task_id", "execution_id", "job_id")
_context: dict[str, contextvars.ContextVar[object]] = {
    name: contextvars.ContextVar(name, default="-") for name in CONTEXT_FIELDS
}


class ContextFilter(logging.Filter):
    """Put the current task/execution/job ids on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _context.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


@contextmanager
def log_context(**values: object) -> Iterator[None]:
    """Set ids for the log lines written inside the block."""
    tokens = [(_context[k], _context[k].set(v)) for k, v in values.items() if k in _context and v is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def configure_logging(level: str = "INFO") -> None:
    """Install the structured format on the root logger once; keep rq's own lines single."""
    root = logging.getLogger()
    if any(isinstance(f, ContextFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("rq").propagate = False  # rq logs through its own handler already
