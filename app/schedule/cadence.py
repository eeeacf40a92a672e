"""Expanding cadences over the local calendar: slots as UTC instants, local months and days.

The cadence itself (the rule as data, its validation) is `app.stations.cadence`.

Conventions (callers must know these):

* Every rule is in the station's LOCAL time (``tz``, default ``Asia/Ho_Chi_Minh``);
  every datetime returned is an aware datetime in UTC.  Naive datetimes are rejected
  with ``ValueError``.  Nothing here reads a clock: ``tz`` and dates are arguments.
* A slot belongs to the local date / month / year it is on, even when its UTC instant is
  on the previous day (00:30 on 1 Jan 2025 in +07:00 is 17:30Z on 31 Dec 2024 and belongs
  to month "2025-01" and year 2025).
* Zones with DST (not Vietnam, but ``tz`` is a parameter): a local time that does not exist
  (spring-forward gap) is read with the offset in force before the gap, i.e. it lands
  that much later in wall-clock time (02:30 -> 03:30); an ambiguous local time
  (fall-back) is its first occurrence.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as dtime
from zoneinfo import ZoneInfo

from app.stations.cadence import AnyCadence, DailyCadence, MonthlyCadence, WeeklyCadence

__all__ = [
    "DEFAULT_TZ",
    "DEFAULT_TZ_NAME",
    "day_bounds_utc",
    "local_month",
    "month_bounds_utc",
    "move_within_month",
    "occurrences",
    "parse_month",
    "year_occurrences",
]

DEFAULT_TZ_NAME = "Asia/Ho_Chi_Minh"
DEFAULT_TZ = ZoneInfo(DEFAULT_TZ_NAME)

_MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")


# --------------------------------------------------------------------------- helpers


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (naive datetimes are not accepted)")


def _require_date(value: date, name: str) -> None:
    if isinstance(value, datetime):
        raise ValueError(f"{name} must be a date, not a datetime: {value!r}")
    if not isinstance(value, date):
        raise TypeError(f"{name} must be a date, got {type(value).__name__}")


def _require_tz(tz: tzinfo) -> None:
    if not isinstance(tz, tzinfo):
        raise TypeError(f"tz must be a tzinfo such as ZoneInfo('Asia/Ho_Chi_Minh'), got {tz!r}")


def _local_to_utc(day: date, at: dtime, tz: tzinfo) -> datetime:
    try:
        return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{day.isoformat()} {at.isoformat('minutes')} is out of range") from exc


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def parse_month(s: str) -> tuple[int, int]:
    """Parse "YYYY-MM" into (year, month); ValueError naming the bad input otherwise."""
    match = _MONTH_RE.fullmatch(s) if isinstance(s, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"month must be YYYY-MM with a month from 01 to 12: {s!r}")
    year = int(match.group(1))
    if year < 1:
        raise ValueError(f"month must be YYYY-MM with a year from 0001 to 9999: {s!r}")
    return year, int(match.group(2))


# --------------------------------------------------------------------------- occurrences


def occurrences(
    cadence: AnyCadence, *, start: date, end: date, tz: ZoneInfo
) -> list[datetime]:
    """UTC datetimes of the cadence's local slots whose local date is in [start, end], sorted."""
    _require_date(start, "start")
    _require_date(end, "end")
    _require_tz(tz)
    if start > end:
        raise ValueError(f"start {start.isoformat()} is after end {end.isoformat()}")
    at = cadence.local_time
    days: list[date] = []
    if isinstance(cadence, MonthlyCadence):
        year, month = start.year, start.month
        while (year, month) <= (end.year, end.month):
            day = cadence.local_date(year, month)
            if start <= day <= end:
                days.append(day)
            year, month = _next_month(year, month)
    elif isinstance(cadence, WeeklyCadence | DailyCadence):
        wanted = set(cadence.weekdays)
        span = (end - start).days
        days = [
            day
            for day in (start + timedelta(days=i) for i in range(span + 1))
            if day.weekday() in wanted
        ]
    else:
        raise TypeError(f"unknown cadence type: {type(cadence).__name__}")
    return sorted(_local_to_utc(day, at, tz) for day in days)


def year_occurrences(
    cadence: AnyCadence, year: int, tz: ZoneInfo
) -> list[datetime]:
    """UTC datetimes of the cadence's slots in the given LOCAL calendar year, sorted."""
    return occurrences(cadence, start=date(year, 1, 1), end=date(year, 12, 31), tz=tz)


# --------------------------------------------------------------------------- local calendar


def local_month(dt_utc: datetime, tz: ZoneInfo) -> str:
    """The local month ("YYYY-MM") an aware datetime falls in, in the station's time zone."""
    _require_aware(dt_utc, "dt_utc")
    _require_tz(tz)
    local = dt_utc.astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def month_bounds_utc(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Half-open UTC bounds [start, next month's start) of a local month "YYYY-MM"."""
    _require_tz(tz)
    year, mon = parse_month(month)
    next_year, next_mon = _next_month(year, mon)
    if next_year > 9999:
        raise ValueError(f"month is out of range: {month!r}")
    midnight = dtime(0, 0)
    return (
        _local_to_utc(date(year, mon, 1), midnight, tz),
        _local_to_utc(date(next_year, next_mon, 1), midnight, tz),
    )


def day_bounds_utc(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Half-open UTC bounds [start, next day's start) of a local calendar day."""
    _require_date(day, "day")
    _require_tz(tz)
    if day == date.max:
        raise ValueError(f"day is out of range: {day.isoformat()}")
    midnight = dtime(0, 0)
    return _local_to_utc(day, midnight, tz), _local_to_utc(day + timedelta(days=1), midnight, tz)


def move_within_month(original_utc: datetime, new_utc: datetime, tz: ZoneInfo) -> None:
    """Raise ValueError unless new_utc is in the same local month as original_utc."""
    _require_aware(original_utc, "original_utc")
    _require_aware(new_utc, "new_utc")
    original_month = local_month(original_utc, tz)
    new_month = local_month(new_utc, tz)
    if new_month != original_month:
        new_local = new_utc.astimezone(tz).isoformat(timespec="minutes")
        raise ValueError(
            f"a broadcast can only be moved within its local month {original_month}: "
            f"the new time {new_local} is in {new_month}"
        )
