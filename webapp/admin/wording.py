"""Words and numbers as the admin writes them (shared by its forms and its template filters)."""
from __future__ import annotations


def human_seconds(seconds: float | int | None) -> str:
    """5 -> '5 s', 300 -> '5 min', 5400 -> '1 h 30 min', 172800 -> '2 d'."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            amount, seconds = divmod(seconds, size)
            parts.append(f"{amount} {unit}")
        if len(parts) == 2:
            break
    return " ".join(parts)
