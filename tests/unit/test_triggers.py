"""Unit tests for chime.triggers: pure schedule maths."""
from __future__ import annotations

import functools
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chime.triggers import (
    CRON,
    CRON_ALIASES,
    INTERVAL,
    ONE_TIME,
    Schedule,
    ScheduleError,
    describe_cron,
    fire_times,
    first_fire_at,
    missed_fire_times,
    next_fire_at,
    validate_cron,
    validate_timezone,
)
from tests.unit import cron_reference

UTC = timezone.utc
ONE_MICROSECOND = timedelta(microseconds=1)
PROPERTY_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def utc(text: str) -> datetime:
    """Parse an ISO time (no offset) as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(zone: str, text: str) -> datetime:
    """Parse an ISO wall time in a zone (first occurrence) and return it in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def cron_schedule(expr: str, zone: str = "UTC", **bounds: datetime) -> Schedule:
    """Build a CRON schedule."""
    return Schedule(CRON, timezone=zone, cron=expr, **bounds)


def interval_schedule(seconds: int, anchor_at: datetime, **bounds: datetime) -> Schedule:
    """Build an INTERVAL schedule anchored at anchor_at."""
    return Schedule(INTERVAL, interval_seconds=seconds, anchor_at=anchor_at, **bounds)


def local_isoformats(fires: list[datetime], zone: str) -> list[str]:
    """Render fire times as local ISO strings with offsets, to the minute."""
    return [fire.astimezone(ZoneInfo(zone)).isoformat(timespec="minutes") for fire in fires]


# --- validate_cron --------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param("0 9 * * 1-5", id="weekdays-at-nine"),
        pytest.param("*/15 * * * *", id="every-quarter-hour"),
        pytest.param("0 0 1,15 * *", id="list-of-days"),
        pytest.param("30 2 * * *", id="daily"),
        pytest.param("0 0 * * 7", id="sunday-as-seven"),
        pytest.param("0 0 * JAN,jul MON-FRI", id="month-and-day-names"),
        pytest.param("0-30/10 8-18/2 * * *", id="stepped-ranges"),
        pytest.param("5/15 * * * *", id="stepped-start-value"),
        pytest.param("0 0 29 2 *", id="leap-day"),
        pytest.param("  0\t9 * * *  ", id="tabs-and-padding"),
        *[pytest.param(alias, id=alias) for alias in sorted(CRON_ALIASES)],
    ],
)
def test_validate_cron_accepts_standard_expressions(expr: str) -> None:
    validate_cron(expr)


@pytest.mark.parametrize(
    ("expr", "message_part"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("   ", "empty", id="blank"),
        pytest.param("* * * *", "exactly 5 fields", id="four-fields"),
        pytest.param("0 0 9 * * *", "exactly 5 fields", id="six-fields-with-seconds"),
        pytest.param("0 0 9 * * * 2030", "exactly 5 fields", id="seven-fields-with-year"),
        pytest.param("@reboot", "Unsupported cron alias", id="reboot"),
        pytest.param("@every 5m", "Unsupported cron alias", id="every-duration"),
        pytest.param("60 * * * *", "out of range 0-59", id="minute-60"),
        pytest.param("0 24 * * *", "out of range 0-23", id="hour-24"),
        pytest.param("0 0 0 * *", "out of range 1-31", id="day-0"),
        pytest.param("0 0 32 * *", "out of range 1-31", id="day-32"),
        pytest.param("0 0 * 13 *", "out of range 1-12", id="month-13"),
        pytest.param("0 0 * * 8", "out of range 0-7", id="weekday-8"),
        pytest.param("0 0 * * FOO", "not a valid day-of-week value", id="unknown-day-name"),
        pytest.param("0 0 * JAN-XYZ *", "not a valid month value", id="unknown-month-name"),
        pytest.param("JAN * * * *", "not a valid minute value", id="name-in-minute"),
        pytest.param("*/0 * * * *", "step 0", id="step-zero"),
        pytest.param("*/61 * * * *", "step 61", id="step-too-large"),
        pytest.param("30-10 * * * *", "runs backwards", id="backwards-range"),
        pytest.param("*-5 * * * *", "cannot start with", id="star-range"),
        pytest.param("0 0 L * *", "not a valid", id="last-day-L"),
        pytest.param("0 0 15W * *", "not a valid", id="nearest-weekday-W"),
        pytest.param("0 0 * * 1#2", "not a valid", id="nth-weekday-hash"),
        pytest.param("0 0 ? * *", "not a valid", id="quartz-question-mark"),
        pytest.param("H * * * *", "not a valid", id="jenkins-hash"),
        pytest.param("1,,2 * * * *", "not a valid", id="empty-list-item"),
        pytest.param("٣ * * * *", "not a valid", id="non-ascii-digit"),
        pytest.param("0 0 30 2 *", "never fires", id="february-30th"),
        pytest.param("0 0 31 4,6,9,11 *", "never fires", id="31st-of-short-months"),
        pytest.param("0 9 * * *\n0 10 * * *", "exactly 5 fields", id="two-lines"),
        pytest.param("*,5 * * * *", "cannot be part of a list", id="star-in-a-list"),
        pytest.param("0 " * 150, "longer than", id="too-long"),
        pytest.param("every day at nine", "exactly 5 fields", id="prose"),
    ],
)
def test_validate_cron_rejects_anything_else_with_a_sentence(expr: str, message_part: str) -> None:
    with pytest.raises(ScheduleError, match=message_part):
        validate_cron(expr)


def test_validate_cron_rejects_non_text_with_schedule_error() -> None:
    with pytest.raises(ScheduleError):
        validate_cron(None)  # type: ignore[arg-type]


CRONISH_TEXT = st.text(alphabet="0123456789*/-,@ \tLW#?HJANMONSUNjanmonsun\n", max_size=40)


@PROPERTY_SETTINGS
@given(st.one_of(st.text(max_size=60), CRONISH_TEXT))
def test_cron_validation_and_description_never_raise_anything_but_schedule_error(text: str) -> None:
    for check in (validate_cron, describe_cron):
        try:
            check(text)
        except ScheduleError:
            pass


def _cron_item(low: int, high: int) -> st.SearchStrategy[str]:
    """Generate one list item (value, range or step) of a cron field."""
    values = st.integers(low, high)
    ranges = st.tuples(values, values).map(sorted).map(lambda pair: f"{pair[0]}-{pair[1]}")
    steps = st.integers(1, high)
    return st.one_of(
        values.map(str),
        ranges,
        steps.map(lambda step: f"*/{step}"),
        st.tuples(ranges, steps).map(lambda pair: f"{pair[0]}/{pair[1]}"),
    )


def _cron_field(low: int, high: int) -> st.SearchStrategy[str]:
    """Generate a valid cron field: '*' alone or a comma-separated list of items."""
    return st.one_of(st.just("*"), st.lists(_cron_item(low, high), min_size=1, max_size=3).map(",".join))


VALID_LOOKING_CRON = st.tuples(
    _cron_field(0, 59), _cron_field(0, 23), _cron_field(1, 31), _cron_field(1, 12), _cron_field(0, 7)
).map(" ".join)


@settings(max_examples=80, deadline=None)
@given(VALID_LOOKING_CRON)
def test_accepted_cron_expressions_are_described_and_fire(expr: str) -> None:
    try:
        validate_cron(expr)
    except ScheduleError as error:
        assert "never fires" in str(error)  # e.g. day 31 in months that lack it
        return
    assert describe_cron(expr)
    after = utc("2026-06-01T12:00:00")
    fire_at = next_fire_at(cron_schedule(expr, "Europe/Berlin"), after)
    assert fire_at is not None and fire_at > after


# --- validate_timezone ------------------------------------------------------------


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Etc/GMT+5", "America/Port-au-Prince"])
def test_validate_timezone_returns_the_zone(name: str) -> None:
    assert validate_timezone(name) == ZoneInfo(name)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Mars/Olympus_Mons", id="unknown"),
        pytest.param("", id="empty"),
        pytest.param("../etc/passwd", id="path-traversal"),
        pytest.param("/etc/localtime", id="absolute-path"),
        pytest.param("Europe/../UTC", id="dot-dot-inside"),
        pytest.param("Europe/Berlin\x00", id="nul-character"),
        pytest.param("America", id="directory"),
        pytest.param("europe/berlin", id="wrong-case"),
        pytest.param("Europe/" + "x" * 5000, id="very-long"),
        pytest.param("zone1970.tab", id="data-file"),
    ],
)
def test_validate_timezone_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ScheduleError, match="^Unknown time zone '"):
        validate_timezone(name)


@PROPERTY_SETTINGS
@given(st.one_of(st.text(max_size=80), st.text(alphabet="AEUacdeilnoprstu/_.-+0\x00", max_size=30)))
def test_validate_timezone_never_raises_anything_but_schedule_error(name: str) -> None:
    try:
        validate_timezone(name)
    except ScheduleError:
        pass


# --- describe_cron ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "description"),
    [
        pytest.param("0 9 * * 1-5", "At 09:00, Monday through Friday", id="weekdays"),
        pytest.param("30 14 * * *", "At 14:30", id="afternoon-in-24-hour-format"),
        pytest.param("*/15 * * * *", "Every 15 minutes", id="quarter-hours"),
        pytest.param("@daily", "At 00:00", id="alias-daily"),
        pytest.param("@hourly", "Every hour", id="alias-hourly"),
        pytest.param("@weekly", "At 00:00, only on Sunday", id="alias-weekly"),
    ],
)
def test_describe_cron_gives_a_human_sentence(expr: str, description: str) -> None:
    assert describe_cron(expr) == description


def test_describe_cron_falls_back_to_a_plain_sentence_when_the_describer_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise IndexError("cannot phrase this")

    monkeypatch.setattr("chime.triggers.ExpressionDescriptor", refuse)
    assert describe_cron("0 5,5/2 * * *") == "Runs on the cron schedule '0 5,5/2 * * *'"


def test_describe_cron_rejects_invalid_expressions() -> None:
    with pytest.raises(ScheduleError):
        describe_cron("0 0 9 * * *")


# --- CRON and daylight saving time -------------------------------------------------


DST_CASES = [
    # zone, expression, search from (local wall time), expected fires (local)
    pytest.param(
        "Europe/Berlin", "30 2 * * *", "2026-03-28T12:00",
        ["2026-03-29T03:00+02:00", "2026-03-30T02:30+02:00"],
        id="berlin-spring-daily-in-gap-fires-at-gap-end",
    ),
    pytest.param(
        "Europe/Berlin", "30 2 * * *", "2026-10-24T12:00",
        ["2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"],
        id="berlin-fall-daily-repeated-time-fires-once",
    ),
    pytest.param(
        "Europe/Berlin", "0 * * * *", "2026-03-29T00:30",
        ["2026-03-29T01:00+01:00", "2026-03-29T03:00+02:00", "2026-03-29T04:00+02:00"],
        id="berlin-spring-hourly-every-real-hour",
    ),
    pytest.param(
        "Europe/Berlin", "0 * * * *", "2026-10-25T00:30",
        ["2026-10-25T01:00+02:00", "2026-10-25T02:00+02:00", "2026-10-25T02:00+01:00", "2026-10-25T03:00+01:00"],
        id="berlin-fall-hourly-every-real-hour",
    ),
    pytest.param(
        "Europe/Berlin", "*/30 * * * *", "2026-03-29T01:10",
        ["2026-03-29T01:30+01:00", "2026-03-29T03:00+02:00", "2026-03-29T03:30+02:00"],
        id="berlin-spring-half-hourly",
    ),
    pytest.param(
        "Europe/Berlin", "*/30 * * * *", "2026-10-25T01:40",
        ["2026-10-25T02:00+02:00", "2026-10-25T02:30+02:00", "2026-10-25T02:00+01:00",
         "2026-10-25T02:30+01:00", "2026-10-25T03:00+01:00"],
        id="berlin-fall-half-hourly",
    ),
    # '*/15' starts with '*': a wildcard job (cronie), so it follows real time in its fixed hour too.
    pytest.param(
        "Europe/Berlin", "*/15 2 * * *", "2026-10-25T01:00",
        ["2026-10-25T02:00+02:00", "2026-10-25T02:15+02:00", "2026-10-25T02:30+02:00",
         "2026-10-25T02:45+02:00", "2026-10-25T02:00+01:00"],
        id="berlin-fall-wildcard-minutes-in-a-fixed-hour-run-in-both-passes",
    ),
    pytest.param(
        "Europe/Berlin", "*/15 2 * * *", "2026-03-29T01:00",
        ["2026-03-30T02:00+02:00", "2026-03-30T02:15+02:00"],
        id="berlin-spring-wildcard-minutes-in-a-fixed-hour-skip-the-gap",
    ),
    pytest.param(
        "Europe/Berlin", "0,15 2 * * *", "2026-03-29T01:00",
        ["2026-03-29T03:00+02:00", "2026-03-30T02:00+02:00"],
        id="berlin-spring-fixed-quarter-hours-collapse-to-gap-end",
    ),
    pytest.param(
        "Europe/Berlin", "@daily", "2026-10-24T12:00",
        ["2026-10-25T00:00+02:00", "2026-10-26T00:00+01:00"],
        id="berlin-fall-alias-daily",
    ),
    pytest.param(
        "America/New_York", "30 2 * * *", "2026-03-07T12:00",
        ["2026-03-08T03:00-04:00", "2026-03-09T02:30-04:00"],
        id="new-york-spring-daily-in-gap-fires-at-gap-end",
    ),
    pytest.param(
        "America/New_York", "30 1 * * *", "2026-10-31T12:00",
        ["2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"],
        id="new-york-fall-daily-repeated-time-fires-once",
    ),
    pytest.param(
        "America/New_York", "0 * * * *", "2026-03-08T00:30",
        ["2026-03-08T01:00-05:00", "2026-03-08T03:00-04:00", "2026-03-08T04:00-04:00"],
        id="new-york-spring-hourly",
    ),
    pytest.param(
        "America/New_York", "@hourly", "2026-11-01T00:30",
        ["2026-11-01T01:00-04:00", "2026-11-01T01:00-05:00", "2026-11-01T02:00-05:00"],
        id="new-york-fall-alias-hourly",
    ),
    pytest.param(
        "America/New_York", "*/30 * * * *", "2026-11-01T00:40",
        ["2026-11-01T01:00-04:00", "2026-11-01T01:30-04:00", "2026-11-01T01:00-05:00",
         "2026-11-01T01:30-05:00", "2026-11-01T02:00-05:00"],
        id="new-york-fall-half-hourly",
    ),
    pytest.param(
        "America/Santiago", "@midnight", "2026-09-05T12:00",
        ["2026-09-06T01:00-03:00", "2026-09-07T00:00-03:00"],
        id="santiago-midnight-that-does-not-exist",
    ),
    pytest.param(
        "Australia/Lord_Howe", "0 2 * * *", "2026-10-03T12:00",
        ["2026-10-04T02:30+11:00", "2026-10-05T02:00+11:00"],
        id="lord-howe-half-hour-spring-daily",
    ),
    pytest.param(
        "Australia/Lord_Howe", "0 * * * *", "2026-10-04T00:30",
        ["2026-10-04T01:00+10:30", "2026-10-04T03:00+11:00"],
        id="lord-howe-half-hour-spring-hourly",
    ),
    pytest.param(
        "Australia/Lord_Howe", "45 1 * * *", "2026-04-04T12:00",
        ["2026-04-05T01:45+11:00", "2026-04-06T01:45+10:30"],
        id="lord-howe-half-hour-fall-daily",
    ),
    pytest.param(
        "Australia/Lord_Howe", "*/30 * * * *", "2026-04-05T00:40",
        ["2026-04-05T01:00+11:00", "2026-04-05T01:30+11:00", "2026-04-05T01:30+10:30", "2026-04-05T02:00+10:30"],
        id="lord-howe-half-hour-fall-half-hourly",
    ),
    pytest.param(
        "Australia/Lord_Howe", "*/7 * * * *", "2026-04-05T01:50",
        ["2026-04-05T01:56+11:00", "2026-04-05T01:35+10:30", "2026-04-05T01:42+10:30"],
        id="lord-howe-fall-odd-step-repeats-the-half-hour",
    ),
]


@pytest.mark.parametrize(("zone", "expr", "from_local", "expected"), DST_CASES)
def test_cron_fires_on_local_wall_time_across_dst(zone: str, expr: str, from_local: str, expected: list[str]) -> None:
    fires = fire_times(cron_schedule(expr, zone), local(zone, from_local), len(expected))
    assert local_isoformats(fires, zone) == expected


def test_cron_fall_back_day_fires_local_time_once() -> None:
    schedule = cron_schedule("30 2 * * *", "Europe/Berlin")
    fires = fire_times(schedule, local("Europe/Berlin", "2026-10-24T12:00"), 3)
    assert [fire.astimezone(ZoneInfo("Europe/Berlin")).date().day for fire in fires] == [25, 26, 27]


def test_cron_spring_forward_day_still_fires_that_day() -> None:
    schedule = cron_schedule("30 2 * * *", "Europe/Berlin")
    assert next_fire_at(schedule, utc("2026-03-28T02:00")) == utc("2026-03-29T01:00")


def test_cron_gap_end_fire_is_not_repeated_when_asked_again_from_it() -> None:
    schedule = cron_schedule("30 2 * * *", "Europe/Berlin")
    assert next_fire_at(schedule, utc("2026-03-29T01:00")) == local("Europe/Berlin", "2026-03-30T02:30")


def test_cron_asked_from_inside_the_repeated_hour_does_not_refire_it() -> None:
    schedule = cron_schedule("30 2 * * *", "Europe/Berlin")
    second_two_ten = utc("2026-10-25T01:10")  # 02:10 CET, after the first 02:30 CEST
    assert next_fire_at(schedule, second_two_ten) == local("Europe/Berlin", "2026-10-26T02:30")


def test_cron_is_evaluated_in_the_schedule_time_zone() -> None:
    schedule = cron_schedule("0 9 * * 1-5", "America/New_York")
    assert next_fire_at(schedule, utc("2026-01-02T15:00")) == utc("2026-01-05T14:00")


def test_cron_next_fire_is_strictly_after_an_exact_fire_time() -> None:
    schedule = cron_schedule("*/15 * * * *")
    assert next_fire_at(schedule, utc("2026-01-01T10:15")) == utc("2026-01-01T10:30")
    assert next_fire_at(schedule, utc("2026-01-01T10:15") - ONE_MICROSECOND) == utc("2026-01-01T10:15")


def test_cron_leap_day_fires_every_four_years() -> None:
    schedule = cron_schedule("0 0 29 2 *")
    assert fire_times(schedule, utc("2026-01-01T00:00"), 2) == [utc("2028-02-29T00:00"), utc("2032-02-29T00:00")]


# --- CRON property tests -------------------------------------------------------------

PROPERTY_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"]
DAILY_EXPRESSIONS = ["30 2 * * *", "0 2 * * *", "45 1 * * *", "0 0 * * *", "0 23 * * *", "@daily"]
EVERY_HOUR_EXPRESSIONS = ["0 * * * *", "*/30 * * * *", "*/15 * * * *", "*/7 * * * *", "@hourly"]
YEAR_START = utc("2026-01-01T00:00")
YEAR_SECONDS = 365 * 24 * 3600


@functools.cache
def dst_transitions(zone_name: str) -> tuple[datetime, ...]:
    """Return the instants in 2026 at which the zone's UTC offset changes."""
    zone, found = ZoneInfo(zone_name), []
    for hour in range(365 * 24):
        before, after = YEAR_START + timedelta(hours=hour), YEAR_START + timedelta(hours=hour + 1)
        if before.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            found.append(after)
    return tuple(found)


def wall_matcher(expr: str):
    """Return a predicate telling whether a naive wall time matches the expression (cronie's rules)."""
    return cron_reference.parse(expr).matches


def is_gap_end(instant: datetime, zone: ZoneInfo) -> bool:
    """Tell whether the clock jumped forward exactly at this instant."""
    before = (instant - ONE_MICROSECOND).astimezone(zone).utcoffset()
    return instant.astimezone(zone).utcoffset() > before


@st.composite
def zone_and_instant(draw: st.DrawFn) -> tuple[str, datetime]:
    """Draw a zone and an instant in 2026, half the time within a day of one of its DST transitions."""
    zone_name = draw(st.sampled_from(PROPERTY_ZONES))
    transitions = dst_transitions(zone_name)
    if transitions and draw(st.booleans()):
        transition = draw(st.sampled_from(transitions))
        # sampled_from spreads evenly; st.integers would cluster at the transition itself
        minutes = draw(st.one_of(st.sampled_from(range(-180, 121)), st.sampled_from(range(-26 * 60, 4 * 60 + 1))))
        jitter_us = draw(st.sampled_from([0, 1, 59_999_999, 30_000_000]))
        return zone_name, transition + timedelta(minutes=minutes, microseconds=jitter_us)
    return zone_name, YEAR_START + timedelta(microseconds=draw(st.integers(0, YEAR_SECONDS * 10**6)))


@PROPERTY_SETTINGS
@given(zone_and_instant(), st.sampled_from(DAILY_EXPRESSIONS))
def test_daily_cron_fires_once_every_local_day_whatever_the_dst(
    zone_and_after: tuple[str, datetime], expr: str
) -> None:
    zone_name, after = zone_and_after
    zone = ZoneInfo(zone_name)
    fires = fire_times(cron_schedule(expr, zone_name), after, 4)
    assert len(fires) == 4 and fires[0] > after
    assert all(earlier < later for earlier, later in zip(fires, fires[1:]))
    local_dates = [fire.astimezone(zone).date() for fire in fires]
    assert all(later - earlier == timedelta(days=1) for earlier, later in zip(local_dates, local_dates[1:]))
    walls = [fire.astimezone(zone).replace(tzinfo=None) for fire in fires]
    assert len(set(walls)) == len(walls)
    for fire in fires:
        assert wall_matcher(expr)(fire.astimezone(zone).replace(tzinfo=None)) or is_gap_end(fire, zone)
    assert cron_reference.fires_between(expr, zone_name, after, fires[1]) == fires[:2]


@PROPERTY_SETTINGS
@given(zone_and_instant(), st.sampled_from(EVERY_HOUR_EXPRESSIONS))
def test_every_hour_cron_follows_real_time_through_dst(zone_and_after: tuple[str, datetime], expr: str) -> None:
    zone_name, after = zone_and_after
    zone = ZoneInfo(zone_name)
    fires = fire_times(cron_schedule(expr, zone_name), after, 6)
    assert len(fires) == 6 and fires[0] > after
    assert all(earlier < later for earlier, later in zip(fires, fires[1:]))
    assert all(wall_matcher(expr)(fire.astimezone(zone).replace(tzinfo=None)) for fire in fires)
    assert cron_reference.fires_between(expr, zone_name, after, fires[-1]) == fires


# --- ONE_TIME, bounds, previews ------------------------------------------------------


def test_one_time_fires_at_run_at_when_it_is_ahead() -> None:
    schedule = Schedule(ONE_TIME, run_at=utc("2026-05-01T09:00"))
    assert next_fire_at(schedule, utc("2026-04-30T00:00")) == utc("2026-05-01T09:00")


@pytest.mark.parametrize(
    "after", [utc("2026-05-01T09:00"), utc("2026-05-02T00:00")], ids=["exactly-at-run-at", "after-run-at"]
)
def test_one_time_has_no_next_fire_once_run_at_is_reached(after: datetime) -> None:
    assert next_fire_at(Schedule(ONE_TIME, run_at=utc("2026-05-01T09:00")), after) is None


def test_first_fire_of_a_past_one_time_is_its_run_at() -> None:
    schedule = Schedule(ONE_TIME, run_at=utc("2020-01-01T00:00"))
    assert first_fire_at(schedule, utc("2026-01-01T00:00")) == utc("2020-01-01T00:00")


def test_first_fire_of_a_recurring_schedule_is_the_next_fire() -> None:
    schedule = cron_schedule("0 12 * * *")
    assert first_fire_at(schedule, utc("2026-01-01T12:00")) == utc("2026-01-02T12:00")


def test_result_is_utc_even_when_inputs_are_in_another_zone() -> None:
    run_at = datetime(2026, 5, 1, 11, tzinfo=ZoneInfo("Europe/Berlin"))
    fire_at = next_fire_at(Schedule(ONE_TIME, run_at=run_at), utc("2026-01-01T00:00"))
    assert fire_at == run_at and fire_at.tzinfo is UTC


def test_cron_never_fires_before_start_at_but_may_fire_exactly_at_it() -> None:
    schedule = cron_schedule("0 * * * *", start_at=utc("2026-01-01T10:00"))
    assert next_fire_at(schedule, utc("2025-12-01T00:00")) == utc("2026-01-01T10:00")
    later_start = cron_schedule("0 * * * *", start_at=utc("2026-01-01T10:00:01"))
    assert next_fire_at(later_start, utc("2025-12-01T00:00")) == utc("2026-01-01T11:00")


def test_cron_fires_exactly_at_end_at_and_never_after_it() -> None:
    schedule = cron_schedule("0 * * * *", end_at=utc("2026-01-01T12:00"))
    assert next_fire_at(schedule, utc("2026-01-01T11:30")) == utc("2026-01-01T12:00")
    assert next_fire_at(schedule, utc("2026-01-01T12:00")) is None


def test_one_time_outside_its_bounds_never_fires() -> None:
    schedule = Schedule(ONE_TIME, run_at=utc("2026-05-01T09:00"), end_at=utc("2026-04-01T00:00"))
    assert next_fire_at(schedule, utc("2026-01-01T00:00")) is None
    assert first_fire_at(schedule, utc("2026-01-01T00:00")) is None


@pytest.mark.parametrize(
    ("count", "expected_length"),
    [(0, 1), (-5, 1), (1, 1), (7, 7), (50, 50), (51, 50), (10**9, 50)],
    ids=["zero-becomes-one", "negative-becomes-one", "one", "seven", "fifty", "fifty-one-capped", "huge-capped"],
)
def test_fire_times_count_is_clamped_to_one_through_fifty(count: int, expected_length: int) -> None:
    assert len(fire_times(cron_schedule("* * * * *"), utc("2026-01-01T00:00"), count)) == expected_length


def test_fire_times_stop_at_end_at() -> None:
    schedule = cron_schedule("0 * * * *", end_at=utc("2026-01-01T03:00"))
    fires = fire_times(schedule, utc("2026-01-01T00:30"), 10)
    assert fires == [utc("2026-01-01T01:00"), utc("2026-01-01T02:00"), utc("2026-01-01T03:00")]


# --- INTERVAL -------------------------------------------------------------------------


def test_interval_fires_at_fixed_rate_from_its_anchor() -> None:
    schedule = interval_schedule(90, anchor_at=utc("2026-01-01T00:00"))
    assert fire_times(schedule, utc("2026-01-01T00:00"), 3) == [
        utc("2026-01-01T00:01:30"),
        utc("2026-01-01T00:03:00"),
        utc("2026-01-01T00:04:30"),
    ]


def test_interval_before_its_anchor_fires_first_at_the_anchor() -> None:
    schedule = interval_schedule(3600, anchor_at=utc("2026-01-01T00:00"))
    assert next_fire_at(schedule, utc("2025-06-01T00:00")) == utc("2026-01-01T00:00")


def test_interval_counts_from_start_at_when_given() -> None:
    schedule = interval_schedule(3600, anchor_at=utc("2026-01-01T00:17"), start_at=utc("2026-01-01T05:00"))
    assert fire_times(schedule, utc("2026-01-01T00:00"), 2) == [utc("2026-01-01T05:00"), utc("2026-01-01T06:00")]


def test_interval_ignores_dst_because_it_runs_on_real_time() -> None:
    schedule = Schedule(INTERVAL, timezone="Europe/Berlin", interval_seconds=3600, anchor_at=utc("2026-10-24T22:00"))
    fires = fire_times(schedule, utc("2026-10-24T22:00"), 4)
    assert [b - a for a, b in zip(fires, fires[1:])] == [timedelta(hours=1)] * 3


def test_interval_does_not_drift_after_millions_of_intervals() -> None:
    base = datetime(2026, 1, 1, 0, 0, 0, 123457, tzinfo=UTC)
    schedule = interval_schedule(7, anchor_at=base)
    target = base + 9_999_999 * timedelta(seconds=7)
    started = time.perf_counter()
    assert next_fire_at(schedule, target - ONE_MICROSECOND) == target
    assert time.perf_counter() - started < 0.1


@settings(max_examples=300, deadline=None)
@given(
    base_us=st.integers(0, 200 * YEAR_SECONDS * 10**6),
    interval_seconds=st.integers(1, 10**7),
    k=st.integers(0, 10**7),
    tiny_us=st.integers(1, 10**6),
)
def test_interval_fire_times_are_exact_multiples_of_the_interval(
    base_us: int, interval_seconds: int, k: int, tiny_us: int
) -> None:
    base = datetime(1990, 1, 1, tzinfo=UTC) + timedelta(microseconds=base_us)
    steps = min(k, (datetime(9000, 1, 1, tzinfo=UTC) - base) // timedelta(seconds=interval_seconds))
    target = base + steps * timedelta(seconds=interval_seconds)
    tiny = timedelta(microseconds=min(tiny_us, interval_seconds * 10**6))
    schedule = interval_schedule(interval_seconds, anchor_at=base)
    assert next_fire_at(schedule, target - tiny) == target
    assert next_fire_at(schedule, target) == target + timedelta(seconds=interval_seconds)


# --- missed_fire_times -----------------------------------------------------------------


def test_missed_interval_fires_count_the_scheduled_one_and_find_the_latest() -> None:
    schedule = interval_schedule(60, anchor_at=utc("2026-01-01T00:00"))
    missed = missed_fire_times(schedule, utc("2026-01-01T10:00"), utc("2026-01-01T10:05:30"))
    assert missed == (6, utc("2026-01-01T10:05"))


def test_missed_interval_fires_are_capped_but_latest_is_exact_and_fast() -> None:
    schedule = interval_schedule(1, anchor_at=utc("2000-01-01T00:00"))
    started = time.perf_counter()
    count, latest_at = missed_fire_times(schedule, utc("2000-01-01T00:00"), utc("2026-01-01T00:00:00.5"), limit=1000)
    assert (count, latest_at) == (1000, utc("2026-01-01T00:00"))
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    ("now", "limit", "expected"),
    [
        pytest.param("2026-01-01T10:00", 1000, (1, "2026-01-01T10:00"), id="on-time"),
        pytest.param("2026-01-01T10:14:59", 1000, (1, "2026-01-01T10:00"), id="late-but-nothing-else-due"),
        pytest.param("2026-01-01T12:00", 1000, (9, "2026-01-01T12:00"), id="two-hours-of-quarter-hours"),
        pytest.param("2026-01-01T12:07", 3, (3, "2026-01-01T12:00"), id="capped-count-exact-latest"),
        pytest.param("2026-03-01T00:01", 1000, (1000, "2026-03-01T00:00"), id="weeks-missed"),
    ],
)
def test_missed_cron_fires(now: str, limit: int, expected: tuple[int, str]) -> None:
    schedule = cron_schedule("*/15 * * * *")
    count, latest_at = missed_fire_times(schedule, utc("2026-01-01T10:00"), utc(now), limit=limit)
    assert (count, latest_at) == (expected[0], utc(expected[1]))


def test_missed_cron_fires_count_both_real_hours_of_a_fall_back() -> None:
    schedule = cron_schedule("0 * * * *", "Europe/Berlin")
    count, latest_at = missed_fire_times(schedule, utc("2026-10-24T23:00"), utc("2026-10-25T02:30"))
    assert (count, latest_at) == (4, utc("2026-10-25T02:00"))


def test_missed_cron_fires_latest_respects_dst_when_capped() -> None:
    schedule = cron_schedule("30 2 * * *", "Europe/Berlin")
    count, latest_at = missed_fire_times(schedule, utc("2026-01-01T01:30"), utc("2026-10-25T01:45"), limit=2)
    assert (count, latest_at) == (2, local("Europe/Berlin", "2026-10-25T02:30"))


def test_missed_fires_stop_at_end_at() -> None:
    schedule = cron_schedule("0 * * * *", end_at=utc("2026-01-01T12:00"))
    assert missed_fire_times(schedule, utc("2026-01-01T10:00"), utc("2026-01-02T00:00")) == (3, utc("2026-01-01T12:00"))


def test_missed_one_time_is_its_run_at() -> None:
    schedule = Schedule(ONE_TIME, run_at=utc("2020-01-01T00:00"))
    assert missed_fire_times(schedule, utc("2020-01-01T00:00"), utc("2026-01-01T00:00")) == (1, utc("2020-01-01T00:00"))


def test_missed_fires_of_a_not_yet_due_occurrence_are_just_that_occurrence() -> None:
    schedule = cron_schedule("* * * * *")
    assert missed_fire_times(schedule, utc("2026-01-01T00:01"), utc("2026-01-01T00:00:59")) == (1, utc("2026-01-01T00:01"))


# --- invalid schedules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "message_part"),
    [
        pytest.param(Schedule(CRON), "must be text", id="cron-without-expression"),
        pytest.param(Schedule(CRON, cron="0 0 9 * * *"), "exactly 5 fields", id="cron-with-seconds"),
        pytest.param(Schedule(CRON, cron="0 9 * * *", timezone="Mars/Base"), "Unknown time zone", id="unknown-zone"),
        pytest.param(Schedule(INTERVAL, interval_seconds=60), "anchor", id="interval-without-base"),
        pytest.param(
            Schedule(INTERVAL, interval_seconds=0, anchor_at=utc("2026-01-01T00:00")), "at least 1", id="zero-interval"
        ),
        pytest.param(Schedule(ONE_TIME), "run time", id="one-time-without-run-at"),
        pytest.param(Schedule(ONE_TIME, run_at=datetime(2026, 1, 1)), "timezone-aware", id="naive-run-at"),
        pytest.param(Schedule("WEEKLY"), "Unknown schedule type", id="unknown-type"),
        pytest.param(
            Schedule(CRON, cron="* * * * *", start_at=utc("2026-02-01T00:00"), end_at=utc("2026-01-01T00:00")),
            "end time", id="end-before-start",
        ),
    ],
)
def test_invalid_schedules_raise_schedule_error(schedule: Schedule, message_part: str) -> None:
    with pytest.raises(ScheduleError, match=message_part):
        next_fire_at(schedule, utc("2026-01-01T00:00"))


def test_naive_after_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire_at(cron_schedule("* * * * *"), datetime(2026, 1, 1))
