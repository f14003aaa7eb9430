"""Cron means cron: Chime's CRON schedules against the rules cronie documents.

Every expected instant below was derived by hand from cronie's crontab(5) and its src/entry.c and
src/cron.c (see tests/unit/cron_reference.py for the rules in one place), never from a cron library:
- day of month and day of week are ORed only when neither field starts with '*';
- a job whose minute or hour field starts with '*' ("wildcard") follows real time: a wall time that
  does not exist never fires, one that happens twice fires twice;
- any other ("fixed-time") job fires a skipped wall time once, at the first instant after the gap,
  and a repeated wall time once, on its first pass.
Zone facts (tzdata 2025b) are checked by test_the_installed_zone_rules_are_the_ones_the_tables_assume.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chime.triggers import (
    CRON,
    Schedule,
    ScheduleError,
    describe_cron,
    fire_times,
    missed_fire_times,
    next_fire_at,
    validate_cron,
)
from tests.unit import cron_reference

UTC = timezone.utc


def z(text: str) -> datetime:
    """Parse '2026-10-03T15:40' as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def case(case_id: str, zone: str, expr: str, from_utc: str, expected: list[str]) -> object:
    return pytest.param(zone, expr, z(from_utc), [z(text) for text in expected], id=case_id)


# --- day of month and day of week -----------------------------------------------------------
# 2026-01-01 is a Thursday, so 2026-03-01 is a Sunday, 2026-06-01 a Monday, 2026-07-01 a Wednesday.

DAY_CASES = [
    # DOM starts with '*' so a day must match both: Monday-Friday only. Fri 5 June after 09:00 -> Mon 8, Tue 9.
    case("star-slash-one-dom-and-weekdays-skips-the-weekend", "UTC", "0 9 */1 * 1-5", "2026-06-05T10:00",
         ["2026-06-08T09:00", "2026-06-09T09:00"]),
    # DOW starts with '*' so a day must be the 1st (and any weekday): monthly, not daily.
    case("first-of-month-and-star-slash-one-dow-is-monthly", "UTC", "0 0 1 * */1", "2026-06-01T12:00",
         ["2026-07-01T00:00", "2026-08-01T00:00"]),
    # crontab(5)'s own example: the 1st and 15th plus every Friday. Mon 1, Fri 5, Fri 12, Mon 15, Fri 19.
    case("crontab5-example-first-fifteenth-and-fridays", "UTC", "30 4 1,15 * 5", "2026-05-31T12:00",
         ["2026-06-01T04:30", "2026-06-05T04:30", "2026-06-12T04:30", "2026-06-15T04:30", "2026-06-19T04:30"]),
    # Neither field starts with '*': ORed, and 0-6 is every day of the week, so it runs daily.
    case("first-of-month-or-every-weekday-range-is-daily", "UTC", "0 0 1 * 0-6", "2026-06-10T12:00",
         ["2026-06-11T00:00", "2026-06-12T00:00"]),
    case("every-day-range-or-mondays-is-daily", "UTC", "0 0 1-31 * 1", "2026-06-10T12:00",
         ["2026-06-11T00:00", "2026-06-12T00:00"]),
    # ORed: 1st-7th or any Monday. Sat 6 after noon -> Sun 7 (7th), Mon 8, Mon 15 (not "first Monday").
    case("first-week-or-mondays-is-not-first-monday", "UTC", "0 12 1-7 * 1", "2026-06-06T13:00",
         ["2026-06-07T12:00", "2026-06-08T12:00", "2026-06-15T12:00"]),
    # ORed: every 13th and every Friday; Fri 13 March fires once. Fridays: 6, 13, 20.
    case("thirteenth-or-fridays-fires-friday-the-13th-once", "UTC", "0 0 13 * 5", "2026-03-01T00:00",
         ["2026-03-06T00:00", "2026-03-13T00:00", "2026-03-20T00:00"]),
    # DOM starts with '*': odd days that are Saturdays. June Saturdays 6, 13, 20, 27; July 4, 11, 18, 25.
    case("odd-days-and-saturdays", "UTC", "0 0 */2 * 6", "2026-06-01T00:00",
         ["2026-06-13T00:00", "2026-06-27T00:00", "2026-07-11T00:00"]),
    case("seven-is-sunday", "UTC", "0 0 * * 7", "2026-06-01T00:00", ["2026-06-07T00:00", "2026-06-14T00:00"]),
    case("weekly-alias-is-sundays", "UTC", "@weekly", "2026-06-01T00:00", ["2026-06-07T00:00", "2026-06-14T00:00"]),
    case("monthly-alias-is-the-first", "UTC", "@monthly", "2026-06-01T12:00", ["2026-07-01T00:00", "2026-08-01T00:00"]),
    # DOM starts with '*' (the month names still count): weekdays of January and July. Wed 1 July onwards.
    case("weekdays-of-named-months", "UTC", "0 0 * JAN,jul MON-FRI", "2026-06-30T12:00",
         ["2026-07-01T00:00", "2026-07-02T00:00", "2026-07-03T00:00", "2026-07-06T00:00"]),
    # DOW starts with '*': 29 February, whatever its weekday.
    case("leap-day-and-any-weekday", "UTC", "0 0 29 2 */1", "2026-01-01T00:00", ["2028-02-29T00:00", "2032-02-29T00:00"]),
    # ORed: 29 February or any Monday in February. Feb 2026 Mondays 2, 9, 16, 23; 1 Feb 2027 is a Monday.
    case("leap-day-or-february-mondays", "UTC", "0 0 29 2 1", "2026-02-20T00:00",
         ["2026-02-23T00:00", "2027-02-01T00:00"]),
    # Weekdays in a southern zone around its spring forward (Sun 27 Sep, +12 -> +13): Sat 26 08:00 +12 ->
    # Mon 28 09:00 +13 = Sep 27 20:00Z, Tue 29 09:00 +13 = Sep 28 20:00Z.
    case("auckland-weekdays-skip-the-weekend-of-the-change", "Pacific/Auckland", "0 9 */1 * 1-5", "2026-09-25T20:00",
         ["2026-09-27T20:00", "2026-09-28T20:00"]),
]


# --- daylight saving time -----------------------------------------------------------------

DST_CASES = [
    # Australia/Lord_Howe, 30-minute DST. Spring: Sun 4 Oct 2026 02:00 +10:30 -> 02:30 +11 at Oct 3 15:30Z
    # (02:00-02:29 never happen). Fall: Sun 5 Apr 2026 02:00 +11 -> 01:30 +10:30 at Apr 4 15:00Z
    # (01:30-01:59 happen at 14:30-14:59Z, then again at 15:00-15:29Z).
    # Fixed: 02:15 is skipped, so it fires at the gap end 15:30Z; next day 02:15 +11 = Oct 4 15:15Z.
    case("lord-howe-spring-fixed-in-gap-fires-at-gap-end", "Australia/Lord_Howe", "15 2 * * *", "2026-10-03T15:00",
         ["2026-10-03T15:30", "2026-10-04T15:15"]),
    # Wildcard (minute '*/20'): 02:00 and 02:20 never happen, 02:40 +11 = 15:40Z; next day 02:00, 02:20 +11.
    case("lord-howe-spring-wildcard-minutes-skip-the-gap", "Australia/Lord_Howe", "*/20 2 * * *", "2026-10-03T15:00",
         ["2026-10-03T15:40", "2026-10-04T15:00", "2026-10-04T15:20"]),
    # Wildcard hours: 01:40 +10:30 = 15:10Z, 02:00/02:20 skipped, 02:40 +11 = 15:40Z, 03:00 +11 = 16:00Z.
    case("lord-howe-spring-wildcard-hours-skip-the-gap", "Australia/Lord_Howe", "*/20 * * * *", "2026-10-03T15:00",
         ["2026-10-03T15:10", "2026-10-03T15:40", "2026-10-03T16:00"]),
    # Fixed: 01:45 +11 = 14:45Z on the first pass only; Mon 6 Apr 01:45 +10:30 = Apr 5 15:15Z.
    case("lord-howe-fall-fixed-repeated-fires-first-pass", "Australia/Lord_Howe", "45 1 * * *", "2026-04-04T14:00",
         ["2026-04-04T14:45", "2026-04-05T15:15"]),
    # Wildcard: 01:45 +11 = 14:45Z, 01:45 +10:30 = 15:15Z, 02:45 +10:30 = 16:15Z.
    case("lord-howe-fall-wildcard-fires-both-passes", "Australia/Lord_Howe", "45 * * * *", "2026-04-04T14:00",
         ["2026-04-04T14:45", "2026-04-04T15:15", "2026-04-04T16:15"]),
    # Wildcard minute in a fixed hour (MIN_STAR): 01:59 +11 = 14:59Z, then the second pass 01:30 +10:30 = 15:00Z...
    case("lord-howe-fall-every-minute-of-hour-one-repeats-the-half-hour", "Australia/Lord_Howe", "* 1 * * *",
         "2026-04-04T14:58", ["2026-04-04T14:59", "2026-04-04T15:00", "2026-04-04T15:01", "2026-04-04T15:02"]),

    # America/Santiago, DST at midnight. Spring: Sun 6 Sep 2026 00:00 -04 -> 01:00 -03 at 04:00Z.
    # Fall: Sun 5 Apr 2026 00:00 -03 -> Sat 4 Apr 23:00 -04 at 03:00Z (Sat 23:00-23:59 happen twice:
    # 02:00-02:59Z and 03:00-03:59Z).
    # Fixed Sunday 00:30: skipped on 6 Sep, fires at the gap end 01:00 -03 = 04:00Z; Sun 13 Sep 00:30 -03.
    case("santiago-spring-sunday-midnight-fires-at-gap-end", "America/Santiago", "30 0 * * 0", "2026-09-06T03:00",
         ["2026-09-06T04:00", "2026-09-13T03:30"]),
    # Wildcard minute: 00:00 and 00:30 on 6 Sep never happen; Mon 7 Sep 00:00 -03 = 03:00Z, 00:30 = 03:30Z.
    case("santiago-spring-wildcard-midnight-hour-skips-the-day", "America/Santiago", "*/30 0 * * *",
         "2026-09-06T03:00", ["2026-09-07T03:00", "2026-09-07T03:30"]),
    # Fixed Saturday 23:30: first pass 23:30 -03 = 02:30Z only; Sat 11 Apr 23:30 -04 = Apr 12 03:30Z.
    case("santiago-fall-fixed-saturday-late-fires-once", "America/Santiago", "30 23 * * 6", "2026-04-05T02:00",
         ["2026-04-05T02:30", "2026-04-12T03:30"]),
    # Wildcard hours on Saturdays: 23:30 -03 = 02:30Z and 23:30 -04 = 03:30Z (still Saturday on the wall);
    # the next Saturday's first :30 is Sat 11 Apr 00:30 -04 = 04:30Z.
    case("santiago-fall-wildcard-saturday-fires-both-passes", "America/Santiago", "30 * * * 6", "2026-04-05T02:00",
         ["2026-04-05T02:30", "2026-04-05T03:30", "2026-04-11T04:30"]),

    # America/Havana (2025: tzdata releases from 2026 on drop Cuba's November 2026 change, so these cases
    # use 2025, on which every release agrees). Spring: Sun 9 Mar 2025 00:00 -05 -> 01:00 -04 at 05:00Z.
    # Fall: Sun 2 Nov 2025 01:00 -04 -> 00:00 -05 at 05:00Z (00:00-00:59 happen at 04:00-04:59Z and
    # 05:00-05:59Z). Fixed: 00:15 -04 = 04:15Z once; Mon 3 Nov 00:15 -05 = 05:15Z.
    case("havana-fall-fixed-fires-first-pass", "America/Havana", "15 0 * * *", "2025-11-02T03:30",
         ["2025-11-02T04:15", "2025-11-03T05:15"]),
    # '0-23' is every hour but does not start with '*': a fixed-time job, so 00:15 fires once.
    # 00:15 -04 = 04:15Z, (not 05:15Z), 01:15 -05 = 06:15Z, 02:15 -05 = 07:15Z.
    case("havana-fall-hour-range-without-star-is-fixed-time", "America/Havana", "15 0-23 * * *", "2025-11-02T03:30",
         ["2025-11-02T04:15", "2025-11-02T06:15", "2025-11-02T07:15"]),
    # '*/1' starts with '*': wildcard, so 00:15 fires on both passes: 04:15Z, 05:15Z, then 01:15 -05 = 06:15Z.
    case("havana-fall-star-slash-one-hours-is-wildcard", "America/Havana", "15 */1 * * *", "2025-11-02T03:30",
         ["2025-11-02T04:15", "2025-11-02T05:15", "2025-11-02T06:15"]),
    # Fixed yearly at a midnight that does not exist: gap end 01:00 -04 = 05:00Z; 9 Mar 2026 is after
    # that year's change (Sun 8 Mar 2026), so 00:00 -04 = 04:00Z.
    case("havana-spring-yearly-missing-midnight-fires-at-gap-end", "America/Havana", "0 0 9 3 *", "2025-03-09T04:00",
         ["2025-03-09T05:00", "2026-03-09T04:00"]),

    # Asia/Beirut, midnight both ways. Spring: Sun 29 Mar 2026 00:00 +02 -> 01:00 +03 at Mar 28 22:00Z.
    # Fall: Sun 25 Oct 00:00 +03 -> Sat 24 Oct 23:00 +02 at 21:00Z (23:00-23:59 at 20:00-20:59Z and 21:00-21:59Z).
    case("beirut-fall-fixed-late-evening-fires-once", "Asia/Beirut", "0 23 * * *", "2026-10-24T19:30",
         ["2026-10-24T20:00", "2026-10-25T21:00"]),
    # Wildcard minutes in hour 23: both passes, then Sun 25 Oct 23:00 +02 = 21:00Z.
    case("beirut-fall-wildcard-late-evening-fires-both-passes", "Asia/Beirut", "*/20 23 * * *", "2026-10-24T19:30",
         ["2026-10-24T20:00", "2026-10-24T20:20", "2026-10-24T20:40", "2026-10-24T21:00", "2026-10-24T21:20",
          "2026-10-24T21:40", "2026-10-25T21:00"]),
    # Fixed: midnight of 29 Mar does not exist, gap end 01:00 +03 = 22:00Z; in 2027 the change is on
    # Sun 28 Mar, so 29 Mar 00:00 +03 = Mar 28 21:00Z.
    case("beirut-spring-yearly-missing-midnight-fires-at-gap-end", "Asia/Beirut", "0 0 29 3 *", "2026-03-28T21:00",
         ["2026-03-28T22:00", "2027-03-28T21:00"]),
    # Wildcard hours on 29 Mar: 00:30 never happens; 01:30 +03 = 22:30Z, 02:30 +03 = 23:30Z.
    case("beirut-spring-wildcard-skips-the-missing-half-past-midnight", "Asia/Beirut", "30 * 29 3 *",
         "2026-03-28T21:00", ["2026-03-28T22:30", "2026-03-28T23:30"]),

    # Australia/Sydney (southern hemisphere). Fall: Sun 5 Apr 2026 03:00 +11 -> 02:00 +10 at Apr 4 16:00Z
    # (02:00-02:59 at 15:00-15:59Z and 16:00-16:59Z). Spring: Sun 4 Oct 02:00 +10 -> 03:00 +11 at Oct 3 16:00Z.
    # Fixed Sundays 02:30: 02:30 +11 = 15:30Z once; Sun 12 Apr 02:30 +10 = Apr 11 16:30Z.
    case("sydney-fall-fixed-sunday-fires-once", "Australia/Sydney", "30 2 * * 0", "2026-04-04T14:00",
         ["2026-04-04T15:30", "2026-04-11T16:30"]),
    # Same job at spring: 02:30 is skipped, gap end 03:00 +11 = 16:00Z; Sun 11 Oct 02:30 +11 = Oct 10 15:30Z.
    case("sydney-spring-fixed-sunday-fires-at-gap-end", "Australia/Sydney", "30 2 * * 0", "2026-10-03T15:00",
         ["2026-10-03T16:00", "2026-10-10T15:30"]),
    # Wildcard minutes: both passes of 02:00 and 02:30, then Sun 12 Apr 02:00 +10 = Apr 11 16:00Z.
    case("sydney-fall-wildcard-sunday-fires-both-passes", "Australia/Sydney", "*/30 2 * * 0", "2026-04-04T14:00",
         ["2026-04-04T15:00", "2026-04-04T15:30", "2026-04-04T16:00", "2026-04-04T16:30", "2026-04-11T16:00"]),
    # Wildcard minutes at spring: nothing on 4 Oct; Sun 11 Oct 02:00 +11 = Oct 10 15:00Z, 02:30 = 15:30Z.
    case("sydney-spring-wildcard-sunday-skips-the-day", "Australia/Sydney", "*/30 2 * * 0", "2026-10-03T15:00",
         ["2026-10-10T15:00", "2026-10-10T15:30"]),

    # America/Sao_Paulo, historical midnight DST. Spring: Sun 4 Nov 2018 00:00 -03 -> 01:00 -02 at 03:00Z.
    # Fall: Sun 17 Feb 2019 00:00 -02 -> Sat 16 Feb 23:00 -03 at 02:00Z (23:00-23:59 at 01:00-01:59Z and
    # 02:00-02:59Z). Brazil has had no DST since 2019.
    case("sao-paulo-2018-spring-yearly-missing-midnight-fires-at-gap-end", "America/Sao_Paulo", "0 0 4 11 *",
         "2018-11-04T02:00", ["2018-11-04T03:00", "2019-11-04T03:00"]),
    case("sao-paulo-2019-fall-wildcard-fires-both-passes", "America/Sao_Paulo", "*/15 23 16 2 *", "2019-02-17T00:30",
         ["2019-02-17T01:00", "2019-02-17T01:15", "2019-02-17T01:30", "2019-02-17T01:45", "2019-02-17T02:00",
          "2019-02-17T02:15", "2019-02-17T02:30", "2019-02-17T02:45", "2020-02-17T02:00"]),

    # Pacific/Auckland. Spring: Sun 27 Sep 2026 02:00 +12 -> 03:00 +13 at Sep 26 14:00Z. Fall: Sun 5 Apr 2026
    # 03:00 +13 -> 02:00 +12 at Apr 4 14:00Z (02:00-02:59 at 13:00-13:59Z and 14:00-14:59Z).
    # Fixed: 02:00 and 02:30 are skipped and 03:00 exists; all three fire once at 03:00 +13 = 14:00Z;
    # 03:30 +13 = 14:30Z; Mon 28 Sep 02:00 +13 = Sep 27 13:00Z.
    case("auckland-spring-fixed-gap-times-merge-with-gap-end", "Pacific/Auckland", "0,30 2-3 * * *",
         "2026-09-26T13:30", ["2026-09-26T14:00", "2026-09-26T14:30", "2026-09-27T13:00"]),
    # Fixed: 02:00 +13 = 13:00Z, 02:30 +13 = 13:30Z, no second pass, 03:00 +12 = 15:00Z, 03:30 +12 = 15:30Z.
    case("auckland-fall-fixed-first-pass-only", "Pacific/Auckland", "0,30 2-3 * * *", "2026-04-04T12:30",
         ["2026-04-04T13:00", "2026-04-04T13:30", "2026-04-04T15:00", "2026-04-04T15:30"]),
    # Wildcard: every real half hour.
    case("auckland-fall-wildcard-every-real-half-hour", "Pacific/Auckland", "0,30 * * * *", "2026-04-04T12:30",
         ["2026-04-04T13:00", "2026-04-04T13:30", "2026-04-04T14:00", "2026-04-04T14:30", "2026-04-04T15:00"]),

    # Africa/Casablanca: +01 all year except Ramadan. Sun 15 Feb 2026 03:00 +01 -> 02:00 +00 at 02:00Z
    # (02:00-02:59 at 01:00-01:59Z and 02:00-02:59Z); Sun 22 Mar 2026 02:00 +00 -> 03:00 +01 at 02:00Z.
    # Fixed: 02:30 +01 = 01:30Z once; Mon 16 Feb 02:30 +00 = 02:30Z.
    case("casablanca-ramadan-start-fixed-fires-once", "Africa/Casablanca", "30 2 * * *", "2026-02-15T00:00",
         ["2026-02-15T01:30", "2026-02-16T02:30"]),
    # Wildcard: 01:30 +01 = 00:30Z, 02:30 +01 = 01:30Z, 02:30 +00 = 02:30Z, 03:30 +00 = 03:30Z.
    case("casablanca-ramadan-start-wildcard-fires-both-passes", "Africa/Casablanca", "30 * * * *", "2026-02-15T00:00",
         ["2026-02-15T00:30", "2026-02-15T01:30", "2026-02-15T02:30", "2026-02-15T03:30"]),
    # Fixed: 02:30 is skipped, gap end 03:00 +01 = 02:00Z; Mon 23 Mar 02:30 +01 = 01:30Z.
    case("casablanca-ramadan-end-fixed-fires-at-gap-end", "Africa/Casablanca", "30 2 * * *", "2026-03-22T01:00",
         ["2026-03-22T02:00", "2026-03-23T01:30"]),
    # Wildcard: 01:30 +00 = 01:30Z, 02:30 never happens, 03:30 +01 = 02:30Z.
    case("casablanca-ramadan-end-wildcard-skips-the-gap", "Africa/Casablanca", "30 * * * *", "2026-03-22T01:00",
         ["2026-03-22T01:30", "2026-03-22T02:30"]),
]

# zone, instant of the change (UTC), UTC offset just before, just after (hours)
ZONE_CHANGES = [
    ("Australia/Lord_Howe", "2026-10-03T15:30", 10.5, 11), ("Australia/Lord_Howe", "2026-04-04T15:00", 11, 10.5),
    ("America/Santiago", "2026-09-06T04:00", -4, -3), ("America/Santiago", "2026-04-05T03:00", -3, -4),
    ("America/Havana", "2025-03-09T05:00", -5, -4), ("America/Havana", "2025-11-02T05:00", -4, -5),
    ("America/Havana", "2026-03-08T05:00", -5, -4),
    ("Asia/Beirut", "2026-03-28T22:00", 2, 3), ("Asia/Beirut", "2026-10-24T21:00", 3, 2),
    ("Australia/Sydney", "2026-10-03T16:00", 10, 11), ("Australia/Sydney", "2026-04-04T16:00", 11, 10),
    ("America/Sao_Paulo", "2018-11-04T03:00", -3, -2), ("America/Sao_Paulo", "2019-02-17T02:00", -2, -3),
    ("Pacific/Auckland", "2026-09-26T14:00", 12, 13), ("Pacific/Auckland", "2026-04-04T14:00", 13, 12),
    ("Africa/Casablanca", "2026-02-15T02:00", 1, 0), ("Africa/Casablanca", "2026-03-22T02:00", 0, 1),
]


def offset_hours(zone: str, instant: datetime) -> float:
    offset = instant.astimezone(ZoneInfo(zone)).utcoffset()
    assert offset is not None
    return offset / timedelta(hours=1)


@pytest.mark.parametrize(("zone", "change", "before", "after"), ZONE_CHANGES, ids=lambda v: str(v))
def test_the_installed_zone_rules_are_the_ones_the_tables_assume(
    zone: str, change: str, before: float, after: float
) -> None:
    assert offset_hours(zone, z(change) - timedelta(seconds=1)) == before
    assert offset_hours(zone, z(change)) == after


@pytest.mark.parametrize(("zone", "expr", "after", "expected"), DAY_CASES + DST_CASES)
def test_cron_fires_when_cronie_would(zone: str, expr: str, after: datetime, expected: list[datetime]) -> None:
    assert fire_times(Schedule(CRON, timezone=zone, cron=expr), after, len(expected)) == expected


@pytest.mark.parametrize(("zone", "expr", "after", "expected"), DAY_CASES + DST_CASES)
def test_next_fire_at_walks_the_same_fires_one_by_one(
    zone: str, expr: str, after: datetime, expected: list[datetime]
) -> None:
    schedule, walked = Schedule(CRON, timezone=zone, cron=expr), []
    for _ in expected:
        after = next_fire_at(schedule, after)
        walked.append(after)
    assert walked == expected


@pytest.mark.parametrize(("zone", "expr", "after", "expected"), DAY_CASES + DST_CASES)
def test_the_reference_agrees_with_the_hand_derived_tables(
    zone: str, expr: str, after: datetime, expected: list[datetime]
) -> None:
    """The brute-force reference of the property tests, checked on the tables' first three days."""
    until = min(after + timedelta(days=3), expected[-1])
    assert cron_reference.fires_between(expr, zone, after, until) == [fire for fire in expected if fire <= until]


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param("0 0 30 2 *", id="february-30th"),
        pytest.param("0 0 31 4,6,9,11 *", id="31st-of-short-months"),
        pytest.param("0 0 31 4 */1", id="april-31st-and-any-weekday"),
        pytest.param("0 0 30 2 */2", id="february-30th-and-stepped-weekdays"),
    ],
)
def test_expressions_that_can_never_fire_are_refused(expr: str) -> None:
    with pytest.raises(ScheduleError, match="never fires: none of its days of the month exists in its months"):
        validate_cron(expr)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        # ORed: the 31st never comes in April, but Mondays do (6 April 2026 is a Monday).
        pytest.param("0 0 31 4 1", "2026-01-01T00:00", "2026-04-06T00:00", id="april-31st-or-mondays"),
        # ORed, and 0-6 is every weekday: every day of February.
        pytest.param("0 0 30 2 0-6", "2026-01-31T12:00", "2026-02-01T00:00", id="february-30th-or-any-weekday"),
    ],
)
def test_an_impossible_day_ored_with_weekdays_still_fires_on_those_weekdays(expr: str, after: str, expected: str) -> None:
    validate_cron(expr)
    assert next_fire_at(Schedule(CRON, cron=expr), z(after)) == z(expected)


@pytest.mark.parametrize(
    ("expr", "day_phrase"),
    [
        pytest.param("0 0 */2 * 6", ", and only on Saturday", id="anded-odd-days-and-saturdays"),
        pytest.param("30 4 1,15 * 5", ", or on Friday", id="ored-days-and-fridays"),
    ],
)
def test_the_description_says_and_or_or_as_cronie_combines_the_day_fields(expr: str, day_phrase: str) -> None:
    assert describe_cron(expr).endswith(day_phrase)


# --- property: Chime against the brute-force reference --------------------------------------

PROPERTY_ZONES = sorted({zone for zone, *_ in ZONE_CHANGES} | {"Europe/Berlin", "UTC"})
WINDOW = timedelta(hours=26)


def _item(low: int, high: int) -> st.SearchStrategy[str]:
    values = st.integers(low, high)
    ranges = st.tuples(values, values).map(sorted).map(lambda pair: f"{pair[0]}-{pair[1]}")
    steps = st.integers(1, max(high - low, 1))
    return st.one_of(
        values.map(str), ranges, steps.map(lambda step: f"*/{step}"),
        st.tuples(ranges, steps).map(lambda pair: f"{pair[0]}/{pair[1]}"),
        st.tuples(values, steps).map(lambda pair: f"{pair[0]}/{pair[1]}"),
    )


def _field(low: int, high: int, star_weight: int = 1) -> st.SearchStrategy[str]:
    listed = st.lists(_item(low, high), min_size=1, max_size=3).map(",".join)
    return st.one_of(*[st.just("*")] * star_weight, listed)


EXPRESSIONS = st.tuples(
    _field(0, 59), _field(0, 23), _field(1, 31, 3), _field(1, 12, 4), _field(0, 7, 2)
).map(" ".join)


@st.composite
def zone_and_instant(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone and an instant within a day before one of its changes (or anywhere in 2026 for UTC/Berlin)."""
    zone = draw(st.sampled_from(PROPERTY_ZONES))
    changes = [z(change) for name, change, *_ in ZONE_CHANGES if name == zone]
    if not changes:
        return zone, z("2026-01-01T00:00") + timedelta(minutes=draw(st.integers(0, 365 * 24 * 60)))
    minutes_before = draw(st.sampled_from(range(-60, 24 * 60 + 1)))
    seconds = draw(st.sampled_from([0, 0, 1, 30, 59]))
    return zone, draw(st.sampled_from(changes)) - timedelta(minutes=minutes_before, seconds=seconds)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone_and_instant(), EXPRESSIONS)
def test_cron_fires_exactly_when_the_brute_force_reference_says(zone_and_after: tuple[str, datetime], expr: str) -> None:
    zone, after = zone_and_after
    try:
        validate_cron(expr)
    except ScheduleError as error:
        assert "never fires" in str(error)
        return
    until = after + WINDOW
    schedule = Schedule(CRON, timezone=zone, cron=expr)
    fires = fire_times(schedule, after, 50)
    assert [fire for fire in fires if fire <= until] == cron_reference.fires_between(expr, zone, after, until)[:50]
    assert next_fire_at(schedule, after) == fires[0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, st.integers(0, 10 * 365 * 24 * 60))
def test_the_next_fire_in_utc_is_the_one_the_reference_finds_even_years_ahead(expr: str, minutes: int) -> None:
    """Day-of-month, day-of-week and month rules over long spans (the DST property sees one day)."""
    try:
        validate_cron(expr)
    except ScheduleError:
        return
    after = z("2020-01-01T00:00") + timedelta(minutes=minutes, seconds=minutes % 61)
    assert next_fire_at(Schedule(CRON, cron=expr), after) == cron_reference.first_fire_in_utc(expr, after)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone_and_instant(), EXPRESSIONS)
def test_a_capped_catch_up_finds_the_latest_fire_the_reference_finds(
    zone_and_after: tuple[str, datetime], expr: str
) -> None:
    zone, after = zone_and_after
    try:
        validate_cron(expr)
    except ScheduleError:
        return
    until = after + WINDOW
    expected = cron_reference.fires_between(expr, zone, after, until)
    if len(expected) < 3:
        return
    schedule = Schedule(CRON, timezone=zone, cron=expr)
    assert missed_fire_times(schedule, expected[0], until, limit=2) == (2, expected[-1])


def test_a_one_value_range_is_that_value_not_the_whole_field() -> None:
    # crontab(5): a range "0-0" is inclusive of both ends, so minute 0 of every hour (croniter 7.0.0
    # expands it to every minute).
    after = datetime(2020, 1, 1, 0, 0, tzinfo=timezone.utc)

    assert fire_times(Schedule(CRON, cron="0-0 * * * *"), after, 2) == [
        datetime(2020, 1, 1, 1, 0, tzinfo=timezone.utc), datetime(2020, 1, 1, 2, 0, tzinfo=timezone.utc)]
