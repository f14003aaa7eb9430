"""Checks every schema shares: storable text, JSON values, instants, ids.

The task's fields and rules are declared in :mod:`chime.schemas.task`, which validates the
API's, the admin's and the import's input alike; the database checks (dependencies exist,
no cycle, unique name) live in :mod:`chime.services`.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone, tzinfo
from typing import Any

MAX_ID = 2**31 - 1  # the largest id the INTEGER primary keys can hold (SQLite and Postgres alike)
MAX_ARGS_DEPTH = 32  # arrays and objects inside one argument (a page showing 900 levels was 32 MB)
MAX_ARGS_BYTES = 64 * 1024  # the args object as compact UTF-8 JSON
NUL_REASON = "must not contain NUL characters"
SURROGATE_REASON = "must be valid Unicode text (no lone surrogates)"


def parse_instant(value: Any, zone: tzinfo | None = None) -> datetime:
    """Parse ISO-8601 text into an aware UTC instant; a naive value is read in `zone`."""
    return instant_in_zone(read_iso_datetime(value), zone or timezone.utc)


def read_iso_datetime(value: Any) -> datetime:
    """Read ISO-8601 text as a datetime, naive when it has no offset; ValueError says why not."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 date-time string")
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time such as 2030-01-31T09:00:00+00:00") from None


def instant_in_zone(value: datetime, zone: tzinfo) -> datetime:
    """An aware UTC instant; a naive `value` is a wall-clock time in `zone`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError("is out of range") from None


def text_error(value: str) -> str | None:
    """Say why text cannot be stored and shown (NUL, lone surrogates), or None."""
    if "\x00" in value:
        return NUL_REASON
    if not is_encodable(value):
        return SURROGATE_REASON
    return None


def json_value_error(value: Any, max_depth: int = MAX_ARGS_DEPTH) -> str | None:
    """Say why a JSON value cannot be stored and shown: nested too deep, or text that `text_error` refuses.

    Walks the value with an explicit stack, so no depth reaches Python's recursion limit. A scalar is at
    depth 0; each array or object around it adds one.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            reason = text_error(item)
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                return f"must not be nested more than {max_depth} levels deep"
            children = list(item.items()) if isinstance(item, dict) else [(None, child) for child in item]
            keys = [key for key, _ in children if isinstance(key, str)]
            reason = next((f"has a key that {r}" for r in map(text_error, keys) if r), None)
            stack.extend((child, depth + 1) for _, child in children)
        else:
            reason = None
        if reason:
            return reason
    return None


def args_errors(args: Any) -> dict[str, str]:
    """Check what no job's own validation should have to: depth, size and text of every argument."""
    if not isinstance(args, dict):
        return {}  # the registry says "must be an object"
    errors: dict[str, str] = {}
    for key, value in args.items():
        key_reason = text_error(key) if isinstance(key, str) else None
        if key_reason:
            errors["args"] = f"argument names {key_reason}"
            continue
        reason = json_value_error(value, MAX_ARGS_DEPTH)
        if reason:
            errors[f"args.{key}"] = reason
    if not errors and len(json.dumps(args, ensure_ascii=False, separators=(",", ":")).encode()) > MAX_ARGS_BYTES:
        errors["args"] = f"must be at most {MAX_ARGS_BYTES // 1024} KiB as JSON"
    return errors


def is_encodable(value: str) -> bool:
    """Say whether text can be stored: lone surrogates (from JSON escapes like \\ud800) cannot be UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
