"""Broadcast cadences (monthly / weekly slots) and local-calendar helpers.

A cadence is plain JSON data, e.g.::

    {"kind": "monthly", "week": 3, "weekday": 5, "time": "17:00"}   # third Saturday, 17:00
    {"kind": "monthly", "week": -1, "weekday": 4, "time": "19:30"}  # last Friday, 19:30
    {"kind": "monthly", "day": 15, "time": "17:00"}                 # day 15, 17:00
    {"kind": "weekly", "weekdays": [6], "time": "06:00"}            # every Sunday, 06:00

Conventions (callers must know these):

* Every rule is in the station's LOCAL time (``tz``, default ``Asia/Ho_Chi_Minh``);
  every datetime returned is an aware datetime in UTC.  Naive datetimes are rejected
  with ``ValueError``.  Nothing here reads a clock: ``tz`` and dates are arguments.
* Weekdays are Python's: 0 = Monday ... 6 = Sunday.
* Monthly ``week`` is 1..5 or -1 (last).  ``week=5`` in a month that has only four such
  weekdays falls back to the last one (the 4th), so a monthly cadence yields exactly one
  slot in every month.  ``day`` larger than the month length means the month's last day
  (``day=31`` -> 30 April, 29 Feb 2024, 28 Feb 2025).
* A slot belongs to the local date / month / year it is on, even when its UTC instant is
  on the previous day (00:30 on 1 Jan 2025 in +07:00 is 17:30Z on 31 Dec 2024 and belongs
  to month "2025-01" and year 2025).
* Zones with DST (not Vietnam, but ``tz`` is a parameter): a local time that does not exist
  (spring-forward gap) is read with the offset in force before the gap, i.e. it lands
  that much later in wall-clock time (02:30 -> 03:30); an ambiguous local time
  (fall-back) is its first occurrence.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as dtime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "DEFAULT_TZ",
    "DEFAULT_TZ_NAME",
    "WEEKDAY_NAMES",
    "Cadence",
    "MonthlyCadence",
    "WeeklyCadence",
    "day_bounds_utc",
    "local_month",
    "month_bounds_utc",
    "move_within_month",
    "occurrences",
    "parse_cadence",
    "parse_month",
    "parse_time",
    "year_occurrences",
]

DEFAULT_TZ_NAME = "Asia/Ho_Chi_Minh"
DEFAULT_TZ = ZoneInfo(DEFAULT_TZ_NAME)

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_TIME_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")


# --------------------------------------------------------------------------- helpers


def _err(message: str) -> PydanticCustomError:
    return PydanticCustomError("cadence", message)


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


def parse_time(value: str) -> dtime:
    """Parse a strict 24-hour "HH:MM" string (00:00..23:59) into a time; ValueError otherwise."""
    if not isinstance(value, str) or not _TIME_RE.fullmatch(value):
        raise ValueError(f"time must be HH:MM, 24-hour, from 00:00 to 23:59: {value!r}")
    hours, minutes = value.split(":")
    return dtime(int(hours), int(minutes))


def parse_month(s: str) -> tuple[int, int]:
    """Parse "YYYY-MM" into (year, month); ValueError naming the bad input otherwise."""
    match = _MONTH_RE.fullmatch(s) if isinstance(s, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"month must be YYYY-MM with a month from 01 to 12: {s!r}")
    year = int(match.group(1))
    if year < 1:
        raise ValueError(f"month must be YYYY-MM with a year from 0001 to 9999: {s!r}")
    return year, int(match.group(2))


# --------------------------------------------------------------------------- models


class MonthlyCadence(BaseModel):
    """Once per local month: the n-th (or last) weekday of the month, or a day of the month."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["monthly"] = "monthly"
    week: Annotated[int | None, Field(strict=True)] = None
    weekday: Annotated[int | None, Field(strict=True)] = None
    day: Annotated[int | None, Field(strict=True)] = None
    time: Annotated[str, Field(strict=True)]

    @field_validator("week")
    @classmethod
    def _check_week(cls, value: int | None) -> int | None:
        if value is not None and value not in (1, 2, 3, 4, 5, -1):
            raise _err(f"week must be 1, 2, 3, 4, 5 or -1 (last), got {value}")
        return value

    @field_validator("weekday")
    @classmethod
    def _check_weekday(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= 6:
            raise _err(f"weekday must be from 0 (Monday) to 6 (Sunday), got {value}")
        return value

    @field_validator("day")
    @classmethod
    def _check_day(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 31:
            raise _err(f"day must be from 1 to 31, got {value}")
        return value

    @field_validator("time")
    @classmethod
    def _check_time(cls, value: str) -> str:
        try:
            parse_time(value)
        except ValueError as exc:
            raise _err(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _check_rule(self) -> MonthlyCadence:
        by_week = self.week is not None or self.weekday is not None
        if self.day is not None and by_week:
            raise _err("set either day, or week and weekday, not both")
        if self.day is None:
            if not by_week:
                raise _err("set either day (1..31), or week (1..5, -1 = last) and weekday (0..6)")
            if self.week is None:
                raise _err("weekday is set but week is missing (1..5, or -1 = last)")
            if self.weekday is None:
                raise _err("week is set but weekday is missing (0 = Monday .. 6 = Sunday)")
        return self

    @property
    def local_time(self) -> dtime:
        """The slot's local wall-clock time."""
        return parse_time(self.time)

    def local_date(self, year: int, month: int) -> date:
        """The local date of this cadence's slot in the given month."""
        last_day = calendar.monthrange(year, month)[1]
        if self.day is not None:
            return date(year, month, min(self.day, last_day))
        assert self.week is not None and self.weekday is not None  # guaranteed by validation
        if self.week == -1:
            last = date(year, month, last_day)
            return last - timedelta(days=(last.weekday() - self.weekday) % 7)
        first = date(year, month, 1)
        nth = first + timedelta(days=(self.weekday - first.weekday()) % 7 + 7 * (self.week - 1))
        while nth.month != month:  # week 5 in a month with only four: fall back to the last
            nth -= timedelta(days=7)
        return nth


class WeeklyCadence(BaseModel):
    """Every week on the given local weekdays (0 = Monday .. 6 = Sunday) at one local time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["weekly"] = "weekly"
    weekdays: Annotated[list[Annotated[int, Field(strict=True)]], Field(strict=True)]
    time: Annotated[str, Field(strict=True)]

    @field_validator("weekdays")
    @classmethod
    def _check_weekdays(cls, value: list[int]) -> list[int]:
        if not value:
            raise _err("weekdays must not be empty: give at least one of 0 (Monday) .. 6 (Sunday)")
        bad = [d for d in value if not 0 <= d <= 6]
        if bad:
            raise _err(f"weekdays must be from 0 (Monday) to 6 (Sunday), got {bad}")
        duplicates = sorted({d for d in value if value.count(d) > 1})
        if duplicates:
            raise _err(f"weekdays must be unique, repeated: {duplicates}")
        return sorted(value)

    @field_validator("time")
    @classmethod
    def _check_time(cls, value: str) -> str:
        try:
            parse_time(value)
        except ValueError as exc:
            raise _err(str(exc)) from exc
        return value

    @property
    def local_time(self) -> dtime:
        """The slot's local wall-clock time."""
        return parse_time(self.time)


Cadence = Annotated[MonthlyCadence | WeeklyCadence, Field(discriminator="kind")]

_CADENCE_ADAPTER: TypeAdapter[MonthlyCadence | WeeklyCadence] = TypeAdapter(Cadence)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        loc = [str(p) for p in error["loc"]]
        if loc and loc[0] in ("monthly", "weekly"):
            loc = loc[1:]  # drop the discriminator tag pydantic puts first
        message = error["msg"]
        if error["type"] == "union_tag_not_found":
            loc, message = ["kind"], "is required: 'monthly' or 'weekly'"
        elif error["type"] == "union_tag_invalid":
            loc = ["kind"]
            message = f"must be 'monthly' or 'weekly', got {error['input'].get('kind')!r}"
        elif error["type"] == "extra_forbidden":
            message = "is not a known field"
        elif error["type"] == "missing":
            message = "is required"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if not loc or message.startswith(f"{loc[-1]} "):
            parts.append(message)  # our own messages already name the field
        else:
            parts.append(f"{'.'.join(loc)}: {message}")
    return "invalid cadence: " + "; ".join(parts)


def parse_cadence(data: dict[str, Any]) -> MonthlyCadence | WeeklyCadence:
    """Validate cadence JSON data; raise ValueError with a readable message when invalid."""
    if not isinstance(data, dict):
        raise ValueError(f"invalid cadence: expected a JSON object, got {type(data).__name__}")
    try:
        return _CADENCE_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from exc


# --------------------------------------------------------------------------- occurrences


def occurrences(
    cadence: MonthlyCadence | WeeklyCadence, *, start: date, end: date, tz: ZoneInfo
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
    elif isinstance(cadence, WeeklyCadence):
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
    cadence: MonthlyCadence | WeeklyCadence, year: int, tz: ZoneInfo
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
