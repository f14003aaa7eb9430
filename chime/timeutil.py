"""Aware-UTC helpers shared by every layer."""
from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Return the current instant as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """Treat a naive datetime as UTC and convert an aware one to UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def isoformat(value: datetime | None) -> str | None:
    """Format an instant as ISO-8601 with a +00:00 offset."""
    value = as_utc(value)
    return value.isoformat() if value is not None else None


def local_text(value: datetime | None, tz_name: str | None) -> str | None:
    """An instant as people read it in a task's time zone, to the second, with its zone and offset:
    "2026-11-30 04:26:57 CET (+01:00)" (UTC, or an unknown zone: "... UTC (+00:00)")."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = as_utc(value)
    if value is None:
        return None
    try:
        zone = ZoneInfo(tz_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = value.astimezone(zone)
    offset = local.strftime("%z") or "+0000"
    name = local.tzname() or "UTC"
    label = "" if name.startswith(("+", "-")) else f"{name} "  # zones without an abbreviation say only the offset
    return f"{local:%Y-%m-%d %H:%M:%S} {label}({offset[:3]}:{offset[3:]})"
