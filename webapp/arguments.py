"""Parse the text of query-string and form arguments: ids, bounded integers, instants, choices.

The one parser the API and the admin share (QueryArgs reads a query string with it), so a value
no column can hold (an id past the INTEGER range, a year 0 date, digits that only look like
digits) is refused with a ValidationError naming the argument instead of reaching the database. Only ASCII digits
count: ``str.isdigit()`` is true for '²' and ``int()`` reads '٣٠' as 30, but a JSON
number or an ``<input type=number>`` never holds either.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from werkzeug.routing import BaseConverter, ValidationError as NoMatch

from chime.errors import ValidationError
from chime.validation import MAX_ID, parse_instant

ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")
MAX_INTEGER_DIGITS = 40  # int() refuses past 4,300 digits; nothing here needs more than 19
NOT_A_NUMBER = "must be a whole number written with the digits 0-9"
TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")


def is_integer_text(raw: str) -> bool:
    """True for an optionally signed run of ASCII digits (surrounding spaces allowed)."""
    return bool(ASCII_INTEGER.fullmatch(raw.strip()))


def parse_integer(raw: str, name: str, low: int, high: int) -> int:
    """Read `raw` as an integer in low..high, or raise ValidationError({name: why})."""
    text = raw.strip()
    if not ASCII_INTEGER.fullmatch(text):
        raise ValidationError({name: NOT_A_NUMBER})
    if len(text) > MAX_INTEGER_DIGITS or not low <= int(text) <= high:
        raise ValidationError({name: f"must be between {low} and {high}"})
    return int(text)


def parse_id(raw: str, name: str) -> int:
    """Read a row id: an integer in 1..MAX_ID."""
    return parse_integer(raw, name, 1, MAX_ID)


def is_id_text(raw: str) -> bool:
    """True when `raw` is the text of a possible row id."""
    try:
        parse_id(raw, "id")
    except ValidationError:
        return False
    return True


def parse_text(raw: str, name: str, max_length: int) -> str:
    """Read free text (a search): at most `max_length` characters, no NUL (Postgres text cannot hold one)."""
    if "\x00" in raw:
        raise ValidationError({name: "must not contain NUL characters"})
    return raw.strip()[:max_length]


def parse_instant_arg(raw: str, name: str, zone: ZoneInfo | None = None) -> datetime:
    """Read ISO-8601 text as an aware UTC instant (naive text in `zone`), or raise ValidationError."""
    try:
        return parse_instant(raw, zone)
    except ValueError as error:
        raise ValidationError({name: str(error)}) from None


class QueryArgs:
    """The one reader of query-string arguments, for the API and the admin alike.

    An absent or empty argument is None (or the default). A malformed number, instant or text is a
    ValidationError naming the argument (a 400) on both surfaces. A value outside a choice or a yes/no
    is one too when `strict` (the API); the admin's list filters are lenient and ignore it, so an old
    bookmark still shows the list.
    """

    def __init__(self, args: Mapping[str, str], *, strict: bool = True) -> None:
        self.args = args
        self.strict = strict

    def raw(self, name: str) -> str:
        return (self.args.get(name) or "").strip()

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        raw = self.raw(name)
        return parse_integer(raw, name, low, high) if raw else default

    def boolean(self, name: str) -> bool | None:
        word = self.raw(name).lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        return self._unknown(name, "must be true or false")

    def choice(self, name: str, options: tuple[str, ...]) -> str | None:
        """One of `options` (upper case), given in any case."""
        value = self.raw(name).upper()
        if value in options:
            return value
        return self._unknown(name, "must be one of " + ", ".join(options))

    def instant(self, name: str, zone: ZoneInfo | None = None) -> datetime | None:
        """An ISO-8601 instant, aware UTC (text without an offset is read in `zone`)."""
        raw = self.raw(name)
        return parse_instant_arg(raw, name, zone) if raw else None

    def text(self, name: str, max_length: int) -> str:
        return parse_text(self.args.get(name) or "", name, max_length)

    def _unknown(self, name: str, reason: str) -> None:
        if self.strict and self.raw(name):
            raise ValidationError({name: reason})
        return None


def digits_up_to(maximum: int) -> str:
    """A regular expression matching exactly the decimal numbers 1..maximum (ASCII, no leading zero)."""
    text = str(maximum)
    options = [f"[1-9][0-9]{{0,{len(text) - 2}}}"] if len(text) > 1 else []
    for position, digit in enumerate(text):
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:
            options.append(f"{text[:position]}[{lowest}-{int(digit) - 1}][0-9]{{{len(text) - position - 1}}}")
    return "(?:" + "|".join([*options, text]) + ")"


class IdConverter(BaseConverter):
    """`<int:...>` in Chime's URLs: a row id, 1..MAX_ID in ASCII digits; any other text does not match (404).

    The range is in the regular expression, not only in to_python: Werkzeug checks a rule's
    methods before its converters, so a converter refusing a value that another method's rule
    accepted would turn the 404 into a 405.
    """

    regex = digits_up_to(MAX_ID)
    part_isolating = True

    def to_python(self, value: str) -> int:
        if not is_id_text(value):
            raise NoMatch()
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))
