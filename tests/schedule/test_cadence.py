"""Tests for cadences: the rule (app.stations.cadence) and its expansion into slots, local
months and UTC bounds (app.schedule.cadence)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from app.schedule.cadence import (
    DEFAULT_TZ,
    day_bounds_utc,
    local_month,
    month_bounds_utc,
    move_within_month,
    occurrences,
    parse_month,
    year_occurrences,
)
from app.stations.cadence import MonthlyCadence, WeeklyCadence, parse_cadence

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SATURDAY, FRIDAY, SUNDAY, MONDAY, WEDNESDAY = 5, 4, 6, 0, 2


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local_dates(slots: list[datetime], tz: ZoneInfo = VN) -> list[date]:
    return [s.astimezone(tz).date() for s in slots]


# --------------------------------------------------------------------------- monthly


def test_default_tz_is_vietnam() -> None:
    assert DEFAULT_TZ == VN


def test_third_saturday_1700_every_month_of_2024() -> None:
    cadence = parse_cadence({"kind": "monthly", "week": 3, "weekday": SATURDAY, "time": "17:00"})
    assert isinstance(cadence, MonthlyCadence)
    slots = year_occurrences(cadence, 2024, VN)
    expected = [
        date(2024, 1, 20),
        date(2024, 2, 17),
        date(2024, 3, 16),
        date(2024, 4, 20),
        date(2024, 5, 18),
        date(2024, 6, 15),
        date(2024, 7, 20),
        date(2024, 8, 17),
        date(2024, 9, 21),
        date(2024, 10, 19),
        date(2024, 11, 16),
        date(2024, 12, 21),
    ]
    assert local_dates(slots) == expected
    # 17:00 at +07:00 is 10:00Z on the same day.
    assert slots == [utc(d.year, d.month, d.day, 10, 0) for d in expected]
    assert all(s.tzinfo is UTC for s in slots)
    assert all(s.astimezone(VN).strftime("%H:%M") == "17:00" for s in slots)
    assert all(d.weekday() == SATURDAY and 15 <= d.day <= 21 for d in expected)


def test_last_friday_1930_2024() -> None:
    cadence = parse_cadence({"kind": "monthly", "week": -1, "weekday": FRIDAY, "time": "19:30"})
    slots = year_occurrences(cadence, 2024, VN)
    assert local_dates(slots) == [
        date(2024, 1, 26),
        date(2024, 2, 23),
        date(2024, 3, 29),
        date(2024, 4, 26),
        date(2024, 5, 31),
        date(2024, 6, 28),
        date(2024, 7, 26),
        date(2024, 8, 30),
        date(2024, 9, 27),
        date(2024, 10, 25),
        date(2024, 11, 29),
        date(2024, 12, 27),
    ]
    assert slots[0] == utc(2024, 1, 26, 12, 30)


def test_fifth_weekday_falls_back_to_last_when_month_has_only_four() -> None:
    cadence = MonthlyCadence(week=5, weekday=SATURDAY, time="17:00")
    # February 2024 has Saturdays 3, 10, 17, 24 only; March 2024 has five (30th is the 5th).
    assert cadence.local_date(2024, 2) == date(2024, 2, 24)
    assert cadence.local_date(2024, 3) == date(2024, 3, 30)
    assert len(year_occurrences(cadence, 2024, VN)) == 12


def test_first_weekday_when_month_starts_on_it() -> None:
    # 1 June 2024 is a Saturday.
    assert MonthlyCadence(week=1, weekday=SATURDAY, time="08:00").local_date(2024, 6) == date(
        2024, 6, 1
    )


def test_day_15_at_1700() -> None:
    cadence = parse_cadence({"kind": "monthly", "day": 15, "time": "17:00"})
    slots = occurrences(cadence, start=date(2024, 1, 1), end=date(2024, 3, 31), tz=VN)
    assert slots == [utc(2024, 1, 15, 10), utc(2024, 2, 15, 10), utc(2024, 3, 15, 10)]


def test_day_31_in_february_leap_and_common_year() -> None:
    cadence = MonthlyCadence(day=31, time="17:00")
    feb_2024 = occurrences(cadence, start=date(2024, 2, 1), end=date(2024, 2, 29), tz=VN)
    feb_2025 = occurrences(cadence, start=date(2025, 2, 1), end=date(2025, 2, 28), tz=VN)
    assert feb_2024 == [utc(2024, 2, 29, 10)]
    assert feb_2025 == [utc(2025, 2, 28, 10)]


def test_day_31_in_30_day_months() -> None:
    cadence = MonthlyCadence(day=31, time="17:00")
    slots = year_occurrences(cadence, 2024, VN)
    assert len(slots) == 12
    by_month = {d.month: d.day for d in local_dates(slots)}
    assert by_month == {
        1: 31,
        2: 29,
        3: 31,
        4: 30,
        5: 31,
        6: 30,
        7: 31,
        8: 31,
        9: 30,
        10: 31,
        11: 30,
        12: 31,
    }


def test_monthly_range_edges_are_inclusive_and_partial_months_filtered() -> None:
    cadence = MonthlyCadence(day=15, time="17:00")
    # Range starts after the 15th of January and ends before the 15th of March.
    slots = occurrences(cadence, start=date(2024, 1, 16), end=date(2024, 3, 14), tz=VN)
    assert slots == [utc(2024, 2, 15, 10)]
    # Single-day range on the slot's local date.
    one = occurrences(cadence, start=date(2024, 2, 15), end=date(2024, 2, 15), tz=VN)
    assert one == [utc(2024, 2, 15, 10)]


def test_year_change_near_local_midnight() -> None:
    cadence = MonthlyCadence(week=1, weekday=WEDNESDAY, time="00:30")  # 1 Jan 2025 is a Wednesday
    slots_2025 = year_occurrences(cadence, 2025, VN)
    first = slots_2025[0]
    assert first == utc(2024, 12, 31, 17, 30)
    assert first.astimezone(VN) == datetime(2025, 1, 1, 0, 30, tzinfo=VN)
    assert local_month(first, VN) == "2025-01"
    assert first.astimezone(VN).year == 2025
    # It is not a 2024 slot even though its UTC date is in 2024.
    slots_2024 = year_occurrences(cadence, 2024, VN)
    assert first not in slots_2024
    assert all(s.astimezone(VN).year == 2024 for s in slots_2024)
    assert len(slots_2024) == len(slots_2025) == 12


def test_late_evening_slot_on_dec_31_stays_in_december() -> None:
    cadence = MonthlyCadence(day=31, time="23:30")
    slot = occurrences(cadence, start=date(2024, 12, 1), end=date(2024, 12, 31), tz=VN)
    assert slot == [utc(2024, 12, 31, 16, 30)]
    assert local_month(slot[0], VN) == "2024-12"


def test_monthly_one_per_month_across_year_boundary() -> None:
    cadence = MonthlyCadence(week=-1, weekday=FRIDAY, time="19:30")
    slots = occurrences(cadence, start=date(2024, 11, 1), end=date(2025, 2, 28), tz=VN)
    assert [local_month(s, VN) for s in slots] == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert slots == sorted(slots)


# --------------------------------------------------------------------------- weekly


def test_weekly_across_month_end() -> None:
    cadence = parse_cadence({"kind": "weekly", "weekdays": [SUNDAY], "time": "06:00"})
    assert isinstance(cadence, WeeklyCadence)
    slots = occurrences(cadence, start=date(2024, 3, 20), end=date(2024, 4, 10), tz=VN)
    assert local_dates(slots) == [date(2024, 3, 24), date(2024, 3, 31), date(2024, 4, 7)]
    assert slots[1] == utc(2024, 3, 30, 23, 0)  # Sunday 06:00 local is Saturday 23:00Z
    assert [local_month(s, VN) for s in slots] == ["2024-03", "2024-03", "2024-04"]


def test_weekly_several_days_across_year_end() -> None:
    cadence = WeeklyCadence(weekdays=[WEDNESDAY, MONDAY], time="00:30")
    assert cadence.weekdays == [MONDAY, WEDNESDAY]  # normalised to sorted order
    slots = occurrences(cadence, start=date(2024, 12, 28), end=date(2025, 1, 8), tz=VN)
    assert local_dates(slots) == [
        date(2024, 12, 30),
        date(2025, 1, 1),
        date(2025, 1, 6),
        date(2025, 1, 8),
    ]
    # 00:30 local on 1 Jan 2025 is 17:30Z on 31 Dec 2024.
    assert slots[1] == utc(2024, 12, 31, 17, 30)
    assert local_month(slots[1], VN) == "2025-01"
    assert slots == sorted(slots)


@pytest.mark.parametrize(
    ("year", "weekday", "count"),
    [
        (2024, MONDAY, 53),  # leap year starting on Monday: Mondays and Tuesdays 53 times
        (2024, 1, 53),
        (2024, WEDNESDAY, 52),
        (2025, WEDNESDAY, 53),  # common year starting on Wednesday
        (2025, 3, 52),
        (2026, 3, 53),  # 2026 starts on a Thursday
        (2026, SUNDAY, 52),
    ],
)
def test_weekly_52_or_53_per_year(year: int, weekday: int, count: int) -> None:
    cadence = WeeklyCadence(weekdays=[weekday], time="00:30")  # UTC date is the day before
    slots = year_occurrences(cadence, year, VN)
    assert len(slots) == count
    assert all(s.astimezone(VN).year == year for s in slots)
    # Cross-check against the calendar itself.
    days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    assert count == sum(
        1 for i in range(days) if (date(year, 1, 1) + timedelta(days=i)).weekday() == weekday
    )


def test_weekly_every_day_of_a_year() -> None:
    cadence = WeeklyCadence(weekdays=list(range(7)), time="12:00")
    assert len(year_occurrences(cadence, 2024, VN)) == 366
    assert len(year_occurrences(cadence, 2025, VN)) == 365


# --------------------------------------------------------------------------- months and days


def test_local_month_of_early_local_morning() -> None:
    # 00:30 on 1 April local is 17:30Z on 31 March.
    assert local_month(utc(2024, 3, 31, 17, 30), VN) == "2024-04"
    assert local_month(utc(2024, 3, 31, 16, 59), VN) == "2024-03"


def test_month_bounds_utc_vietnam() -> None:
    start, end = month_bounds_utc("2024-04", VN)
    assert start == utc(2024, 3, 31, 17, 0)
    assert end == utc(2024, 4, 30, 17, 0)
    assert start.tzinfo is UTC and end.tzinfo is UTC
    assert local_month(start, VN) == "2024-04"
    assert local_month(end - timedelta(microseconds=1), VN) == "2024-04"
    assert local_month(end, VN) == "2024-05"


def test_month_bounds_utc_december_and_february() -> None:
    assert month_bounds_utc("2024-12", VN) == (utc(2024, 11, 30, 17), utc(2024, 12, 31, 17))
    assert month_bounds_utc("2024-02", VN) == (utc(2024, 1, 31, 17), utc(2024, 2, 29, 17))


def test_month_bounds_utc_with_dst_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # CET -> CEST on 31 March 2024
    assert month_bounds_utc("2024-03", berlin) == (utc(2024, 2, 29, 23), utc(2024, 3, 31, 22))


def test_slots_fall_inside_their_month_bounds() -> None:
    cadence = MonthlyCadence(day=1, time="00:30")
    for slot in year_occurrences(cadence, 2024, VN):
        start, end = month_bounds_utc(local_month(slot, VN), VN)
        assert start <= slot < end


def test_day_bounds_utc() -> None:
    assert day_bounds_utc(date(2025, 1, 1), VN) == (utc(2024, 12, 31, 17), utc(2025, 1, 1, 17))


def test_parse_month() -> None:
    assert parse_month("2024-04") == (2024, 4)
    assert parse_month("2025-12") == (2025, 12)


@pytest.mark.parametrize(
    "bad", ["2024-13", "2024-1", "2024-00", "24-01", "2024/01", "", " 2024-01"]
)
def test_parse_month_rejects_bad_input(bad: str) -> None:
    with pytest.raises(ValueError, match="month must be YYYY-MM") as info:
        parse_month(bad)
    assert repr(bad) in str(info.value)


def test_parse_month_message_names_the_input() -> None:
    with pytest.raises(ValueError) as info:
        parse_month("2024-13")
    assert str(info.value) == "month must be YYYY-MM with a month from 01 to 12: '2024-13'"


def test_month_bounds_rejects_bad_month() -> None:
    with pytest.raises(ValueError, match="'2024-1'"):
        month_bounds_utc("2024-1", VN)


# --------------------------------------------------------------------------- moving


def test_move_within_month_allows_same_local_month() -> None:
    original = utc(2024, 4, 20, 10)
    move_within_month(original, utc(2024, 4, 27, 10), VN)
    # 17:30Z on 31 March is 00:30 on 1 April local: still April.
    move_within_month(original, utc(2024, 3, 31, 17, 30), VN)
    # Any aware tz is accepted and compared in the station's zone.
    move_within_month(original, datetime(2024, 4, 30, 23, 59, tzinfo=VN), VN)


def test_move_within_month_rejects_other_local_month() -> None:
    original = utc(2024, 4, 20, 10)
    with pytest.raises(ValueError, match=r"2024-04.*2024-05"):
        move_within_month(original, utc(2024, 4, 30, 17, 0), VN)  # 00:00 on 1 May local
    with pytest.raises(ValueError, match="2024-03"):
        move_within_month(original, utc(2024, 3, 31, 16, 59), VN)


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"kind": "monthly", "week": 3, "weekday": 7, "time": "17:00"}, "weekday"),
        ({"kind": "monthly", "week": 3, "weekday": -1, "time": "17:00"}, "weekday"),
        ({"kind": "monthly", "week": 6, "weekday": 5, "time": "17:00"}, "week"),
        ({"kind": "monthly", "week": 0, "weekday": 5, "time": "17:00"}, "week"),
        ({"kind": "monthly", "day": 32, "time": "17:00"}, "day"),
        ({"kind": "monthly", "day": 0, "time": "17:00"}, "day"),
        ({"kind": "monthly", "day": 15, "time": "25:00"}, "time"),
        ({"kind": "monthly", "day": 15, "time": "17:60"}, "time"),
        ({"kind": "monthly", "day": 15, "time": "7:00"}, "time"),
        ({"kind": "monthly", "day": 15}, "time"),
        ({"kind": "monthly", "day": 15, "week": 3, "weekday": 5, "time": "17:00"}, "not both"),
        ({"kind": "monthly", "day": 15, "week": 3, "time": "17:00"}, "not both"),
        ({"kind": "monthly", "time": "17:00"}, "either day"),
        ({"kind": "monthly", "week": 3, "time": "17:00"}, "weekday is missing"),
        ({"kind": "monthly", "weekday": 5, "time": "17:00"}, "week is missing"),
        ({"kind": "monthly", "week": "3", "weekday": 5, "time": "17:00"}, "week"),
        ({"kind": "weekly", "weekdays": [], "time": "17:00"}, "weekdays must not be empty"),
        ({"kind": "weekly", "weekdays": [7], "time": "17:00"}, "weekdays"),
        ({"kind": "weekly", "weekdays": [1, 1], "time": "17:00"}, "unique"),
        ({"kind": "weekly", "weekdays": [1], "time": "25:00"}, "time"),
        ({"kind": "weekly", "time": "17:00"}, "weekdays"),
        ({"kind": "weekly", "weekdays": [1], "time": "17:00", "tim": "x"}, "tim"),
        ({"kind": "hourly", "time": "17:00"}, "kind"),
        ({"time": "17:00"}, "kind"),
    ],
)
def test_parse_cadence_rejects_bad_data(data: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match="invalid cadence") as info:
        parse_cadence(data)
    assert problem in str(info.value)


def test_parse_cadence_rejects_non_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        parse_cadence([1, 2])  # type: ignore[arg-type]


def test_models_raise_validation_error_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        WeeklyCadence(weekdays=[], time="17:00")
    assert info.value.errors()[0]["loc"] == ("weekdays",)
    with pytest.raises(ValidationError, match="25:00"):
        MonthlyCadence(day=1, time="25:00")
    with pytest.raises(ValidationError, match="not both"):
        MonthlyCadence(day=1, week=1, weekday=1, time="10:00")
    with pytest.raises(ValidationError, match="weekday must be from 0"):
        MonthlyCadence(week=1, weekday=7, time="10:00")


def test_cadence_round_trips_as_json_data() -> None:
    data = {"kind": "monthly", "week": 3, "weekday": 5, "day": None, "time": "17:00"}
    assert parse_cadence(data).model_dump(mode="json") == data
    weekly = {"kind": "weekly", "weekdays": [0, 4], "time": "05:45"}
    assert parse_cadence(weekly).model_dump(mode="json") == weekly


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2024, 4, 1, 0, 30)  # noqa: DTZ001 - deliberately naive
    aware = utc(2024, 4, 1, 0, 30)
    with pytest.raises(ValueError, match="naive"):
        local_month(naive, VN)
    with pytest.raises(ValueError, match="naive"):
        move_within_month(naive, aware, VN)
    with pytest.raises(ValueError, match="naive"):
        move_within_month(aware, naive, VN)


def test_datetime_where_date_expected_is_rejected() -> None:
    cadence = MonthlyCadence(day=1, time="10:00")
    with pytest.raises(ValueError, match="not a datetime"):
        occurrences(cadence, start=utc(2024, 1, 1), end=date(2024, 2, 1), tz=VN)
    with pytest.raises(ValueError, match="not a datetime"):
        day_bounds_utc(utc(2024, 1, 1), VN)


def test_reversed_range_is_rejected() -> None:
    cadence = MonthlyCadence(day=1, time="10:00")
    with pytest.raises(ValueError, match="after end"):
        occurrences(cadence, start=date(2024, 2, 1), end=date(2024, 1, 1), tz=VN)


def test_other_tz_is_honoured() -> None:
    cadence = MonthlyCadence(day=1, time="00:30")
    tokyo = ZoneInfo("Asia/Tokyo")  # +09:00
    assert occurrences(cadence, start=date(2024, 1, 1), end=date(2024, 1, 31), tz=tokyo) == [
        utc(2023, 12, 31, 15, 30)
    ]
