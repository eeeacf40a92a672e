"""What the home page (Trang chủ) shows, gathered with the same services as the API.

- The column being prepared: the station's next CCHC broadcast not yet assembled (next
  month's, when this month's is done), with its date, its rundown's total against the
  window, and the one next step of the person's role: an editor adds segments for that
  month; an approver sees how many wait for approval and assembles the column when its
  rundown fits (or lets "Tự động xếp" fill it). `coming` is a list of such slots, so that
  other kinds of programme can be listed beside the column.
- The scheduler's state when it is down or has never run (approvers and admins), its open
  warnings in words with a link each (app.console.warning_views), devices not seen within
  the "online" window, and a to-do list by role: an editor's drafts to finish (their own
  first), an approver's submissions waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.console import warning_views
from app.console.warning_views import ShownWarning
from app.devices import service as devices
from app.devices.models import Device
from app.schedule import assembly
from app.schedule import warnings as schedule_warnings
from app.schedule.models import Broadcast, BroadcastStatus
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
    programme: str = ""  # the programme's name
    waiting: int = 0  # the month's segments waiting for approval
    approved: int = 0  # the month's approved segments with audio

    @property
    def assembled(self) -> bool:
        return self.broadcast.master_sha256 is not None

    @property
    def aired(self) -> bool:
        return self.broadcast.status == BroadcastStatus.aired.value

    @property
    def month(self) -> str:
        return self.broadcast.local_month


@dataclass
class Home:
    month: str  # the station's local month, "2024-03"
    station: Station | None
    column: MonthColumn | None  # this month's
    coming: list[MonthColumn] = field(default_factory=list)  # being prepared, next first
    scheduler_down: str | None = None  # the scheduler's state in words, when not running
    warnings: list[ShownWarning] = field(default_factory=list)
    offline: list[Device] = field(default_factory=list)
    drafts: list[Segment] = field(default_factory=list)
    waiting: list[Segment] = field(default_factory=list)
    waiting_total: int = 0


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


def _month_counts(session: Session, column: MonthColumn) -> None:
    """How many of the column's month's segments wait for approval, and are ready."""
    b = column.broadcast
    rows = session.execute(
        select(Segment.status, func.count(Segment.id), func.count(Segment.audio_id))
        .where(
            Segment.station_id == b.station_id,
            Segment.programme_id == b.programme_id,
            Segment.target_month == b.local_month,
        )
        .group_by(Segment.status)
    ).tuples()
    for status, n, with_audio in rows:
        if status == SegmentStatus.submitted.value:
            column.waiting = n
        elif status == SegmentStatus.approved.value:
            column.approved = with_audio


def coming_columns(session: Session, *, station: Station, now: datetime) -> list[MonthColumn]:
    """The CCHC column being prepared: the next one still ahead and not yet assembled."""
    broadcast = session.scalar(
        select(Broadcast)
        .join(Programme, Programme.id == Broadcast.programme_id)
        .where(
            Broadcast.station_id == station.id,
            Programme.code == CCHC,
            Broadcast.village_id.is_(None),
            Broadcast.status == BroadcastStatus.planned.value,
            Broadcast.starts_at > now,
        )
        .order_by(Broadcast.starts_at)
        .limit(1)
    )
    if broadcast is None:
        return []
    programme = session.get_one(Programme, broadcast.programme_id)
    column = MonthColumn(broadcast, assembly.rundown_view(session, broadcast), programme.name)
    _month_counts(session, column)
    return [column]


def home(session: Session, *, user: User, now: datetime) -> Home:
    """Everything the home page shows for this user."""
    station = _station(session, user)
    tz = ZoneInfo(station.timezone) if station else None
    month = (now.astimezone(tz) if tz else now).strftime("%Y-%m")
    result = Home(month=month, station=station, column=None)
    if station is None or tz is None:
        return result
    result.column = month_column(session, station=station, month=month)
    result.coming = coming_columns(session, station=station, now=now)
    if Role(user.role).at_least(Role.approver):
        result.scheduler_down = warning_views.scheduler_down(session, now=now, tz=tz)
    open_warnings = schedule_warnings.list_query(user=user, station_id=station.id, open_only=True)
    result.warnings = warning_views.shown(
        session, list(session.scalars(open_warnings.limit(WARNING_LIMIT))), tz=tz
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
        waiting = in_station.where(Segment.status == SegmentStatus.submitted.value)
        result.waiting = list(
            session.scalars(waiting.order_by(Segment.submitted_at).limit(TODO_LIMIT))
        )
        result.waiting_total = (
            session.scalar(select(func.count()).select_from(waiting.subquery())) or 0
        )
    return result
