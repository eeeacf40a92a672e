"""What staff see of the hub: today's relays and, during a slot, whether the hub receives
its upstream ("VOV1: đang nhận" / "VOV1: mất tín hiệu từ 06:12"), from what the hub
records (app.streams.hub: StreamState, RelaySlot); a slot is relayed when as-run intake
marked its broadcast aired (app.playout.asrun: a device heard 90 % of it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.schedule.cadence import day_bounds_utc
from app.schedule.models import Broadcast, BroadcastStatus
from app.stations.models import RELAY, Programme, Station
from app.streams.models import RelaySlot, StreamState

Phase = Literal["upcoming", "on-air", "over"]


@dataclass(frozen=True)
class RelayToday:
    """One of today's relay slots as staff see it."""

    broadcast_id: int
    code: str
    name: str
    starts_at: datetime
    ends_at: datetime
    phase: Phase
    receiving: bool | None  # on air: whether the hub receives its upstream (None: unknown)
    since: datetime | None  # since when it receives, or lost it
    relayed: bool | None  # over: whether a device heard 90 % of it
    reason: str | None  # over and not relayed: why, when the hub knew

    def words(self, tz: ZoneInfo) -> str:
        """ "VOV1: đang nhận", "VOV1: mất tín hiệu từ 06:12", "VOV1: đã tiếp sóng"…"""
        if self.phase == "upcoming":
            return f"{self.name}: {self.starts_at.astimezone(tz):%H:%M}"
        if self.phase == "on-air":
            if self.receiving:
                return f"{self.name}: đang nhận"
            if self.receiving is False and self.since is not None:
                return f"{self.name}: mất tín hiệu từ {self.since.astimezone(tz):%H:%M}"
            return f"{self.name}: đang chờ tín hiệu"
        if self.relayed:
            return f"{self.name}: đã tiếp sóng"
        return f"{self.name}: không tiếp sóng được" + (f" ({self.reason})" if self.reason else "")


def todays_relays(session: Session, *, station: Station, now: datetime) -> list[RelayToday]:
    """The station's relay slots of its local today, in time order."""
    tz = ZoneInfo(station.timezone)
    lo, hi = day_bounds_utc(now.astimezone(tz).date(), tz)
    rows = session.execute(
        select(Broadcast, Programme, StreamState, RelaySlot)
        .join(Programme, Programme.id == Broadcast.programme_id)
        .outerjoin(StreamState, StreamState.programme_id == Programme.id)
        .outerjoin(RelaySlot, RelaySlot.broadcast_id == Broadcast.id)
        .where(
            Broadcast.station_id == station.id,
            Programme.source_kind == RELAY,
            Broadcast.status != BroadcastStatus.cancelled.value,
            Broadcast.starts_at >= lo,
            Broadcast.starts_at < hi,
        )
        .order_by(Broadcast.starts_at)
    ).all()
    out = []
    for b, p, state, slot in rows:
        ends = b.starts_at + timedelta(milliseconds=p.max_duration_ms)
        phase: Phase = "upcoming" if now < b.starts_at else "on-air" if now < ends else "over"
        fresh = state is not None and state.checked_at >= now - timedelta(minutes=1)
        relayed = b.status == BroadcastStatus.aired.value
        out.append(
            RelayToday(
                broadcast_id=b.id,
                code=p.code,
                name=p.name,
                starts_at=b.starts_at,
                ends_at=ends,
                phase=phase,
                receiving=state.receiving if fresh and state is not None else None,
                since=state.since if fresh and state is not None else None,
                relayed=relayed if phase == "over" else None,
                reason=slot.reason if slot is not None and phase == "over" else None,
            )
        )
    return out
