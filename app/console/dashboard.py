"""What the home page (Trang chủ) shows, gathered with the same services as the API.

- This month's CCHC column (the station's local month): when, the rundown's total against
  the programme's window, assembled or not, aired or not.
- The scheduler's newest warnings, devices not seen within the "online" window, and a
  to-do list by role: an editor's drafts to finish (their own first), an approver's
  submissions waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.devices import service as devices
from app.devices.models import Device
from app.schedule import assembly
from app.schedule import warnings as schedule_warnings
from app.schedule.models import Broadcast, BroadcastStatus, ScheduleWarning
from app.schedule.schemas import RundownOut
from app.segments.models import Segment, SegmentStatus
from app.stations import service as stations
from app.stations.models import Programme, Station

CCHC = "cchc"
TODO_LIMIT = 8
WARNING_LIMIT = 5


@dataclass
class MonthColumn:
    broadcast: Broadcast
    rundown: RundownOut

    @property
    def assembled(self) -> bool:
        return self.broadcast.master_sha256 is not None

    @property
    def aired(self) -> bool:
        return self.broadcast.status == BroadcastStatus.aired.value


@dataclass
class Home:
    month: str  # the station's local month, "2024-03"
    station: Station | None
    column: MonthColumn | None
    warnings: list[ScheduleWarning] = field(default_factory=list)
    offline: list[Device] = field(default_factory=list)
    drafts: list[Segment] = field(default_factory=list)
    waiting: list[Segment] = field(default_factory=list)


def _station(session: Session, user: User) -> Station | None:
    visible = stations.list_stations(session, user=user)
    if user.station_id is not None:
        return next((s for s in visible if s.id == user.station_id), None)
    return visible[0] if len(visible) == 1 else None


def user_station(session: Session, user: User) -> Station | None:
    """The station whose pages the user sees: their own (an admin's only one, if just one)."""
    return _station(session, user)


def month_column(session: Session, *, station: Station, month: str) -> MonthColumn | None:
    """The station's CCHC broadcast of `month` with its rundown, if planned."""
    broadcast = session.scalar(
        select(Broadcast)
        .join(Programme, Programme.id == Broadcast.programme_id)
        .where(
            Broadcast.station_id == station.id,
            Programme.code == CCHC,
            Broadcast.local_month == month,
            Broadcast.status != BroadcastStatus.cancelled.value,
        )
        .limit(1)
    )
    if broadcast is None:
        return None
    return MonthColumn(broadcast, assembly.rundown_view(session, broadcast))


def home(session: Session, *, user: User, now: datetime) -> Home:
    """Everything the home page shows for this user."""
    station = _station(session, user)
    tz = ZoneInfo(station.timezone) if station else None
    month = (now.astimezone(tz) if tz else now).strftime("%Y-%m")
    result = Home(month=month, station=station, column=None)
    if station is None:
        return result
    result.column = month_column(session, station=station, month=month)
    result.warnings = list(
        session.scalars(
            schedule_warnings.list_query(user=user, station_id=station.id).limit(WARNING_LIMIT)
        )
    )
    if Role(user.role).at_least(Role.approver):
        result.offline = [
            d
            for d in devices.list_devices(session, station_id=station.id)
            if d.is_active and not devices.is_online(d.last_seen_at, now)
        ]
    in_station = select(Segment).where(Segment.station_id == station.id)
    if Role(user.role).at_least(Role.editor):
        mine_first = case((Segment.created_by_id == user.id, 0), else_=1)
        result.drafts = list(
            session.scalars(
                in_station.where(Segment.status == SegmentStatus.draft.value)
                .order_by(mine_first, Segment.updated_at.desc())
                .limit(TODO_LIMIT)
            )
        )
    if Role(user.role).at_least(Role.approver):
        result.waiting = list(
            session.scalars(
                in_station.where(Segment.status == SegmentStatus.submitted.value)
                .order_by(Segment.submitted_at)
                .limit(TODO_LIMIT)
            )
        )
    return result
