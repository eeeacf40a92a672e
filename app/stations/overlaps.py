"""No double booking on one loudspeaker: village slots against the commune's programmes.

In an ``ip`` station every village cluster plays the commune's programmes as well as its
own village's (app.playout.scope), so a village slot that overlaps a commune programme's
slot asks one loudspeaker for two things at once. Planning refuses such a cadence (422
naming both); overlaps that exist already (a station that became ``ip``) are warned about
by the scheduler, and the playlist says which of two overlapping items wins.

How two cadences are compared, on the station's local wall clock, each slot as long as its
programme's MAXIMUM duration (what it may run), touching ends allowed:

* weekly (or daily: every day of the week) against anything: a weekly cadence repeats every
  week, and a monthly slot always falls on one weekday ("third Saturday") or, by day of
  month, on every weekday over the years; so both become windows of the week, compared across
  midnight and the week's end;
* monthly against monthly: both are expanded over 28 years (the calendar's weekday cycle)
  and compared slot by slot.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from app.stations.cadence import (
    WEEKDAY_NAMES,
    AnyCadence,
    DailyCadence,
    MonthlyCadence,
    WeeklyCadence,
    parse_cadence,
)

WEEK_MIN = 7 * 24 * 60
CYCLE_YEARS = range(2001, 2029)  # 28 years: every weekday pattern of the calendar


@dataclass(frozen=True)
class Rule:
    """One programme's slot rule as it is (or would be, after a change)."""

    programme_id: int
    code: str
    scope: str  # "station" (the commune's) or "village"
    cadence: dict[str, Any]
    max_duration_ms: int


@dataclass(frozen=True)
class Cluster:
    """A village's loudspeaker cluster and its own slots, if any (None: the default)."""

    village_id: int
    name: str
    cadence: dict[str, Any] | None


@dataclass(frozen=True)
class Clash:
    """A village slot that overlaps a commune programme on the village's cluster."""

    cluster: Cluster
    village_rule: Rule
    village_cadence: dict[str, Any]
    commune_rule: Rule

    @property
    def key(self) -> tuple[int, int, int]:
        """Which pair clashes: (village, village programme, commune programme)."""
        return (
            self.cluster.village_id,
            self.village_rule.programme_id,
            self.commune_rule.programme_id,
        )

    def describe(self) -> str:
        """Both sides, named: the village's slot and the commune's programme."""
        return (
            f"village {self.cluster.name!r} (id {self.cluster.village_id}): its "
            f"{self.village_rule.code} slot ({describe_cadence(self.village_cadence)}, up to "
            f"{_minutes(self.village_rule.max_duration_ms)}) overlaps the commune's "
            f"{self.commune_rule.code} programme ({describe_cadence(self.commune_rule.cadence)}, "
            f"up to {_minutes(self.commune_rule.max_duration_ms)}) on the same loudspeaker cluster"
        )


def clashes(rules: Sequence[Rule], clusters: Sequence[Cluster]) -> list[Clash]:
    """Pure: every village slot that overlaps a commune programme, village by village."""
    commune = [r for r in rules if r.scope == "station"]
    village = [r for r in rules if r.scope == "village"]
    found = []
    for cluster in clusters:
        for v_rule in village:
            cadence = cluster.cadence or v_rule.cadence
            for c_rule in commune:
                if cadences_overlap(
                    cadence, v_rule.max_duration_ms, c_rule.cadence, c_rule.max_duration_ms
                ):
                    found.append(Clash(cluster, v_rule, cadence, c_rule))
    return found


def cadences_overlap(a: dict[str, Any], a_ms: int, b: dict[str, Any], b_ms: int) -> bool:
    """Pure: whether a slot of cadence `a` lasting a_ms ever overlaps one of `b` lasting b_ms."""
    # Cached: a station's villages mostly share the default cadence.
    return _overlap(json.dumps(a, sort_keys=True), a_ms, json.dumps(b, sort_keys=True), b_ms)


@lru_cache(maxsize=1024)
def _overlap(a_json: str, a_ms: int, b_json: str, b_ms: int) -> bool:
    ca, cb = parse_cadence(json.loads(a_json)), parse_cadence(json.loads(b_json))
    if isinstance(ca, MonthlyCadence) and isinstance(cb, MonthlyCadence):
        return _intervals_meet(_monthly_starts(ca), a_ms, _monthly_starts(cb), b_ms)
    wa, wb = _week_minutes(ca), _week_minutes(cb)
    la, lb = a_ms / 60_000, b_ms / 60_000
    return any(
        s < t + shift + lb and t + shift < s + la
        for s in wa
        for t in wb
        for shift in (-WEEK_MIN, 0, WEEK_MIN)
    )


def _week_minutes(cadence: AnyCadence) -> list[int]:
    """The minutes of the week (from Monday 00:00) at which the cadence's slots may start."""
    at = cadence.local_time.hour * 60 + cadence.local_time.minute
    if isinstance(cadence, WeeklyCadence | DailyCadence):
        days: Iterable[int] = cadence.weekdays
    elif cadence.day is not None:
        days = range(7)  # a day of the month falls on every weekday over the years
    else:
        assert cadence.weekday is not None
        days = [cadence.weekday]
    return [d * 24 * 60 + at for d in days]


def _monthly_starts(cadence: MonthlyCadence) -> Iterator[datetime]:
    for year in CYCLE_YEARS:
        for month in range(1, 13):
            yield datetime.combine(cadence.local_date(year, month), cadence.local_time)


def _intervals_meet(a: Iterable[datetime], a_ms: int, b: Iterable[datetime], b_ms: int) -> bool:
    la, lb = timedelta(milliseconds=a_ms), timedelta(milliseconds=b_ms)
    starts_b = sorted(b)
    for s in a:
        # The first of b's slots that has not ended by s: it meets s if it starts before s ends.
        i = bisect.bisect_right(starts_b, s - lb)
        if i < len(starts_b) and starts_b[i] < s + la:
            return True
    return False


def describe_cadence(data: dict[str, Any]) -> str:
    """A cadence in words: "Sunday 18:00", "week 3 Saturday 17:00", "day 15 17:00"."""
    cadence = parse_cadence(data)
    if isinstance(cadence, DailyCadence):
        return f"every day {cadence.time}"
    if isinstance(cadence, WeeklyCadence):
        days = ", ".join(WEEKDAY_NAMES[d] for d in cadence.weekdays)
        return f"every {days} {cadence.time}"
    if cadence.day is not None:
        return f"monthly, day {cadence.day} {cadence.time}"
    assert cadence.weekday is not None
    week = "last" if cadence.week == -1 else f"week {cadence.week}"
    return f"monthly, {week} {WEEKDAY_NAMES[cadence.weekday]} {cadence.time}"


def _minutes(ms: int) -> str:
    minutes, rest = divmod(ms, 60_000)
    return f"{minutes} min" if not rest else f"{ms / 60_000:.1f} min"
