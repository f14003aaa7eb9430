"""The one query-argument parser: the API reads it strictly, the admin's list filters leniently."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from chime.errors import ValidationError
from webapp.arguments import QueryArgs

STATUSES = ("PENDING", "FAILED")


def test_absent_or_empty_arguments_are_none_or_the_default() -> None:
    for args in (QueryArgs({}), QueryArgs({"limit": "", "enabled": " ", "status": "", "since": ""}, strict=False)):
        assert args.integer("limit", 50, 1, 500) == 50
        assert (args.boolean("enabled"), args.choice("status", STATUSES), args.instant("since")) == (None, None, None)
        assert args.text("search", 200) == ""


def test_values_are_read_the_same_way_strict_or_lenient() -> None:
    for strict in (True, False):
        args = QueryArgs({"limit": " 20 ", "enabled": "Yes", "status": "failed", "search": "  a_b  ",
                          "since": "2030-01-01T09:00"}, strict=strict)
        assert args.integer("limit", 50, 1, 500) == 20
        assert args.boolean("enabled") is True
        assert args.choice("status", STATUSES) == "FAILED"
        assert args.text("search", 200) == "a_b"
        assert args.instant("since", ZoneInfo("Europe/Berlin")) == datetime(2030, 1, 1, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("name,value,reason", [
    ("enabled", "maybe", "must be true or false"),
    ("status", "LOST", "must be one of PENDING, FAILED"),
])
def test_an_unknown_choice_is_a_400_for_the_api_and_ignored_by_the_admin(name: str, value: str, reason: str) -> None:
    read = {"enabled": lambda a: a.boolean("enabled"), "status": lambda a: a.choice("status", STATUSES)}[name]
    with pytest.raises(ValidationError) as refused:
        read(QueryArgs({name: value}))
    assert refused.value.fields == {name: reason}
    assert read(QueryArgs({name: value}, strict=False)) is None


@pytest.mark.parametrize("args", [{"page": "²"}, {"page": "0"}, {"page": "1" * 50}, {"page": "x\x00"}])
def test_a_malformed_number_is_a_400_on_both_surfaces(args: dict[str, str]) -> None:
    for strict in (True, False):
        with pytest.raises(ValidationError) as refused:
            QueryArgs(args, strict=strict).integer("page", 1, 1, 10**9)
        assert set(refused.value.fields) == {"page"}


def test_a_malformed_instant_or_a_nul_in_a_text_is_a_400_on_both_surfaces() -> None:
    for strict in (True, False):
        with pytest.raises(ValidationError):
            QueryArgs({"since": "2026-13-45"}, strict=strict).instant("since")
        with pytest.raises(ValidationError):
            QueryArgs({"q": "a\x00b"}, strict=strict).text("q", 200)
