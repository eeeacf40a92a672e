"""A programme's rule as data: the cadence (monthly or weekly slots) and its validation.

A cadence is plain JSON data, stored on a programme (its default) or a village (its own
weekly slots), e.g.::

    {"kind": "monthly", "week": 3, "weekday": 5, "time": "17:00"}   # third Saturday, 17:00
    {"kind": "monthly", "week": -1, "weekday": 4, "time": "19:30"}  # last Friday, 19:30
    {"kind": "monthly", "day": 15, "time": "17:00"}                 # day 15, 17:00
    {"kind": "weekly", "weekdays": [6], "time": "06:00"}            # every Sunday, 06:00
    {"kind": "daily", "time": "06:00"}                              # every day, 06:00 (relays)

Conventions (callers must know these):

* ``time`` is the station's LOCAL wall-clock time, strict 24-hour "HH:MM".
* Weekdays are Python's: 0 = Monday ... 6 = Sunday.
* Monthly ``week`` is 1..5 or -1 (last).  ``week=5`` in a month that has only four such
  weekdays falls back to the last one (the 4th), so a monthly cadence yields exactly one
  slot in every month.  ``day`` larger than the month length means the month's last day
  (``day=31`` -> 30 April, 29 Feb 2024, 28 Feb 2025).

This module holds only the rule; expanding it into UTC instants over a calendar range
(time zones, local months) is `app.schedule.cadence`.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from datetime import time as dtime
from typing import Annotated, Any, Literal

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
    "WEEKDAY_NAMES",
    "AnyCadence",
    "Cadence",
    "DailyCadence",
    "MonthlyCadence",
    "WeeklyCadence",
    "parse_cadence",
    "parse_time",
]

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_TIME_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _err(message: str) -> PydanticCustomError:
    return PydanticCustomError("cadence", message)


def parse_time(value: str) -> dtime:
    """Parse a strict 24-hour "HH:MM" string (00:00..23:59) into a time; ValueError otherwise."""
    if not isinstance(value, str) or not _TIME_RE.fullmatch(value):
        raise ValueError(f"time must be HH:MM, 24-hour, from 00:00 to 23:59: {value!r}")
    hours, minutes = value.split(":")
    return dtime(int(hours), int(minutes))


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


class DailyCadence(BaseModel):
    """Every local day at one local time (a relay of national or provincial radio)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["daily"] = "daily"
    time: Annotated[str, Field(strict=True)]

    @field_validator("time")
    @classmethod
    def _check_time(cls, value: str) -> str:
        try:
            parse_time(value)
        except ValueError as exc:
            raise _err(str(exc)) from exc
        return value

    @property
    def weekdays(self) -> list[int]:
        """Every day of the week: a daily cadence is a weekly one on all seven days."""
        return list(range(7))

    @property
    def local_time(self) -> dtime:
        """The slot's local wall-clock time."""
        return parse_time(self.time)


AnyCadence = MonthlyCadence | WeeklyCadence | DailyCadence
Cadence = Annotated[AnyCadence, Field(discriminator="kind")]

_CADENCE_ADAPTER: TypeAdapter[AnyCadence] = TypeAdapter(Cadence)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        loc = [str(p) for p in error["loc"]]
        if loc and loc[0] in ("monthly", "weekly", "daily"):
            loc = loc[1:]  # drop the discriminator tag pydantic puts first
        message = error["msg"]
        if error["type"] == "union_tag_not_found":
            loc, message = ["kind"], "is required: 'monthly', 'weekly' or 'daily'"
        elif error["type"] == "union_tag_invalid":
            loc = ["kind"]
            message = (
                f"must be 'monthly', 'weekly' or 'daily', got {error['input'].get('kind')!r}"
            )
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


def parse_cadence(data: dict[str, Any]) -> AnyCadence:
    """Validate cadence JSON data; raise ValueError with a readable message when invalid."""
    if not isinstance(data, dict):
        raise ValueError(f"invalid cadence: expected a JSON object, got {type(data).__name__}")
    try:
        return _CADENCE_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from exc
