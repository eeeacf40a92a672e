"""One broadcast judged from the as-run log, and a month's result from its broadcasts.

See app.reports.service for the rules (aired, interrupted, missed, pending; a month's
result against the cadence and the duration window).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from app.devices.models import Device
from app.playout.aired import MasterHistory, is_aired
from app.playout.models import AsRunEvent
from app.playout.scope import carries_broadcast
from app.reports.schemas import BroadcastState, MonthResult
from app.schedule.cadence import occurrences, parse_month
from app.schedule.models import Broadcast, BroadcastStatus
from app.stations.cadence import parse_cadence
from app.stations.models import Programme


@dataclass(frozen=True)
class Outcome:
    """What the as-run log says of one broadcast (on all its devices, or one village's)."""

    state: BroadcastState
    aired_ms: int = 0
    aired_at: datetime | None = None


class Event(NamedTuple):
    """One as-run event of a device that carries the broadcast."""

    status: str
    started_at: datetime
    ended_at: datetime
    sha256: str | None  # None: a relayed stream
    village_id: int | None  # the reporting device's village; None: the station's PC
    device_id: int = 0
    relayed_ms: int | None = None
    dropout_count: int | None = None
    dropout_ms: int | None = None


def _ms(delta: timedelta) -> int:
    return max(0, delta // timedelta(milliseconds=1))


def judge(
    broadcast: Broadcast,
    events: Iterable[Event],
    *,
    history: MasterHistory,
    now: datetime,
    grace: timedelta,
) -> Outcome:
    """The broadcast's state from the events of devices that carry it."""
    events = list(events)
    played = [
        (_ms(e.ended_at - e.started_at), e.started_at)
        for e in events
        if e.sha256 is not None and is_aired(e.status, e.sha256, e.started_at, history)
    ]
    if played:
        aired_ms, aired_at = max(played, key=lambda p: (p[0], p[1]))
        return Outcome("aired", aired_ms, aired_at)
    if any(e.status == "interrupted" for e in events):
        return Outcome("interrupted")
    if broadcast.status == BroadcastStatus.missed.value or broadcast.starts_at + grace <= now:
        return Outcome("missed")
    return Outcome("pending")


def events_by_broadcast(
    session: Session, broadcasts: Sequence[Broadcast]
) -> dict[int, list[Event]]:
    """Each broadcast's events, only from the devices that carry it (scope.carries_broadcast)."""
    if not broadcasts:
        return {}
    rows = session.execute(
        select(
            AsRunEvent.broadcast_id,
            AsRunEvent.status,
            AsRunEvent.started_at,
            AsRunEvent.ended_at,
            AsRunEvent.sha256,
            Device.village_id,
            Device.id,
            AsRunEvent.relayed_ms,
            AsRunEvent.dropout_count,
            AsRunEvent.dropout_ms,
        )
        .join(Device, Device.id == AsRunEvent.device_id)
        .join(
            Broadcast,
            and_(
                Broadcast.id == AsRunEvent.broadcast_id,
                carries_broadcast(Device.station_id, Device.village_id),
            ),
        )
        .where(AsRunEvent.broadcast_id.in_([b.id for b in broadcasts]))
    )
    out: dict[int, list[Event]] = defaultdict(list)
    for broadcast_id, *event in rows:
        out[broadcast_id].append(Event(*event))
    return out


def month_result(
    *,
    aired: Sequence[Outcome],
    expected: int,
    window: tuple[int, int],
    interrupted: int,
    missed: int,
    closed: bool,
) -> MonthResult:
    if not aired:
        if interrupted:
            return "interrupted"
        return "not-aired" if closed or missed else "pending"
    if len(aired) > expected:
        return "aired-too-often"
    if any(o.aired_ms < window[0] for o in aired):
        return "too-short"
    if any(o.aired_ms > window[1] for o in aired):
        return "too-long"
    if len(aired) < expected:
        return "too-few" if closed else "pending"
    return "compliant"


def expected_per_month(programme: Programme, month: str, tz: ZoneInfo) -> int:
    """Airings the programme's cadence asks for in a local month (1 for the monthly column)."""
    year, mon = parse_month(month)
    try:
        cadence = parse_cadence(programme.cadence)
    except ValueError:
        return 1
    last = calendar.monthrange(year, mon)[1]
    return len(occurrences(cadence, start=date(year, mon, 1), end=date(year, mon, last), tz=tz))


def pct(part: int, whole: int) -> float | None:
    return round(part * 100 / whole, 1) if whole else None


def count_outcomes(outcomes: Iterable[Outcome]) -> dict[str, int]:
    counts = {"aired": 0, "interrupted": 0, "missed": 0, "pending": 0, "aired_ms": 0}
    for o in outcomes:
        counts[o.state] += 1
        counts["aired_ms"] += o.aired_ms
    return counts
