"""The execution log's export: the filtered log as a CSV or JSON download, streamed.

The body is written batch by batch while the client reads it (webapp.queries.execution_batches:
keyset queries of EXPORT_BATCH_ROWS rows), so a million rows never sit in memory at once. Both
formats carry the fields of the API's Execution (chime.schemas.execution.ExecutionRead), newest first.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import Response, stream_with_context

from chime import audit
from chime.schemas.execution import ExecutionRead
from webapp.queries import ExecutionFilters, execution_batches

EXPORT_FORMATS = ("csv", "json")
COLUMNS = tuple(ExecutionRead.model_fields)
# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection"): such text
# gets a leading apostrophe, which spreadsheets show as text and do not evaluate.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPES = {"csv": "text/csv", "json": "application/json"}  # Flask adds "; charset=utf-8" to text/csv


def export_response(filters: ExecutionFilters, file_format: str, now: datetime) -> Response:
    """A streamed download of the filtered log in `file_format` ("csv" or "json")."""
    chunks = csv_chunks(filters) if file_format == "csv" else json_chunks(filters)
    response = Response(stream_with_context(as_actor(audit.current_actor(), chunks)), mimetype=MEDIA_TYPES[file_format])
    filename = f"chime-log-{now:%Y%m%dT%H%M%SZ}.{file_format}"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def as_actor(actor: audit.Actor, chunks: Iterator[str]) -> Iterator[str]:
    """Write the chunks as the requester sees rows (secrets masked below admin): the body is written
    after the view returned, outside the request's own actor."""
    with audit.acting_as(actor):
        yield from chunks


def csv_chunks(filters: ExecutionFilters) -> Iterator[str]:
    """The header line, then one chunk of CSV lines per batch of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield _drain(buffer)
    for batch in execution_batches(filters):
        writer.writerows([csv_cell(value) for value in ExecutionRead.dump(row).values()] for row in batch)
        yield _drain(buffer)


def json_chunks(filters: ExecutionFilters) -> Iterator[str]:
    """One JSON array of executions, written a batch at a time."""
    yield "["
    separator = "\n"
    for batch in execution_batches(filters):
        yield separator + ",\n".join(json.dumps(ExecutionRead.dump(row), ensure_ascii=False) for row in batch)
        separator = ",\n"
    yield "\n]\n"


def csv_cell(value: Any) -> Any:
    """A JSON value as a CSV cell: null empty, text guarded against formulas, a structured result
    (object, list, true/false) as JSON text."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
