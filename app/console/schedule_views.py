"""What the Lịch phát pages show, gathered with the same services as the API.

- The year's calendar as a list of months (a phone reads a list, not a 12-column grid):
  each month's CCHC broadcast(s) one by one, its village slots counted by status, and one
  month opened slot by slot on request.
- A broadcast's rundown (app.schedule.assembly.rundown_view, as the API's), the approved
  segments that may be added to it, and the window in words.

"Filled" is not a stored status: a planned broadcast whose rundown has segments.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audio.models import AudioAsset
from app.console.forms import parse_int
from app.console.i18n import _, format_duration
from app.schedule import service as schedule
from app.schedule.models import Broadcast, BroadcastStatus, RundownItem
from app.schedule.schemas import RundownOut
from app.segments.models import Segment, SegmentStatus
from app.stations.models import Programme, Station, Village

FILLED = "filled"
# The statuses a calendar line can show, in the order a month's counts are listed.
SHOWN = ("planned", FILLED, "assembled", "aired", "missed", "cancelled")


@dataclass
class Line:
    """One broadcast in the calendar."""

    broadcast: Any  # a Broadcast, or a row of its id, starts_at, status …
    programme: Programme
    village: str | None
    status: str  # a key of labels.BROADCAST_STATUS ("filled" included)


@dataclass
class Month:
    month: str  # "2024-03"
    station_lines: list[Line] = field(default_factory=list)  # the CCHC column and the like
    village_counts: Counter[str] = field(default_factory=Counter)
    village_lines: list[Line] = field(default_factory=list)  # only for the opened month

    @property
    def village_total(self) -> int:
        return sum(n for status, n in self.village_counts.items() if status != "cancelled")


def shown_status(broadcast: Any, filled: set[int]) -> str:
    if broadcast.status == BroadcastStatus.planned.value and broadcast.id in filled:
        return FILLED
    return broadcast.status


def year_calendar(
    session: Session, *, user: User, station: Station, year: int, opened: str | None
) -> list[Month]:
    """The station's year month by month; the `opened` month lists its village slots too."""
    # Columns, not entities: a year is some 430 rows, and the page needs six fields.
    query = schedule.list_query(user=user, station_id=station.id, year=year)
    rows = session.execute(
        query.with_only_columns(
            Broadcast.id,
            Broadcast.programme_id,
            Broadcast.village_id,
            Broadcast.starts_at,
            Broadcast.local_month,
            Broadcast.status,
        )
    ).all()
    in_station = select(Programme).where(Programme.station_id == station.id)
    programmes = {p.id: p for p in session.scalars(in_station)}
    villages = dict(
        session.execute(select(Village.id, Village.name).where(Village.station_id == station.id))
        .tuples()
        .all()
    )
    filled = set(
        session.scalars(
            select(RundownItem.broadcast_id)
            .join(Broadcast, Broadcast.id == RundownItem.broadcast_id)
            .where(
                Broadcast.station_id == station.id,
                Broadcast.local_month.like(f"{year:04d}-%"),
                Broadcast.status == BroadcastStatus.planned.value,
            )
            .distinct()
        )
    )
    months = {f"{year:04d}-{m:02d}": Month(f"{year:04d}-{m:02d}") for m in range(1, 13)}
    for b in rows:
        month = months.get(b.local_month)
        if month is None:
            continue
        status = shown_status(b, filled)
        if b.village_id is None:
            month.station_lines.append(Line(b, programmes[b.programme_id], None, status))
            continue
        month.village_counts[status] += 1
        if b.local_month == opened:
            month.village_lines.append(
                Line(b, programmes[b.programme_id], villages.get(b.village_id), status)
            )
    return list(months.values())


@dataclass
class BroadcastPage:
    broadcast: Broadcast
    programme: Programme
    village: str | None
    status: str
    rundown: RundownOut
    addable: list[tuple[Segment, int]]  # approved segments with audio, and their duration
    editable: bool


def broadcast_page(session: Session, *, user: User, broadcast_id: int) -> BroadcastPage:
    """The broadcast, its rundown as the API shows it, and what may still be added."""
    from app.schedule import assembly

    broadcast = schedule.get_broadcast(session, broadcast_id, user=user)
    programme = session.get_one(Programme, broadcast.programme_id)
    village = session.get(Village, broadcast.village_id) if broadcast.village_id else None
    rundown = assembly.rundown_view(session, broadcast)
    in_rundown = {i.segment_id for i in rundown.items if i.segment_id is not None}
    filled = {broadcast.id} if in_rundown else set()
    editable = broadcast.status in schedule.ACTIVE
    addable: list[tuple[Segment, int]] = []
    if editable:
        stmt = (
            select(Segment, AudioAsset.duration_ms)
            .join(AudioAsset, AudioAsset.id == Segment.audio_id)
            .where(
                Segment.station_id == broadcast.station_id,
                Segment.programme_id == programme.id,
                Segment.status == SegmentStatus.approved.value,
            )
            .order_by(Segment.target_month.desc(), Segment.id.desc())
            .limit(100)
        )
        addable = [(s, d) for s, d in session.execute(stmt).tuples() if s.id not in in_rundown]
    return BroadcastPage(
        broadcast=broadcast,
        programme=programme,
        village=village.name if village else None,
        status=shown_status(broadcast, filled),
        rundown=rundown,
        addable=addable,
        editable=editable,
    )


def window_message(rundown: RundownOut) -> str | None:
    """Why this rundown cannot be assembled, in the person's words (None when it can)."""
    if rundown.compliant:
        return None
    low, high = rundown.window_ms
    total = rundown.total_ms
    if not any(i.kind == "segment" for i in rundown.items):
        return _("Buổi phát chưa có tin bài nào: hãy thêm tin bài đã duyệt rồi ghép.")
    if total < low:
        return _(
            "Chưa ghép được: tổng thời lượng %(total)s, còn thiếu %(d)s so với tối thiểu "
            "%(low)s. Hãy thêm tin bài đã duyệt."
        ) % {"total": format_duration(total), "d": format_duration(low - total),
             "low": format_duration(low)}
    return _(
        "Chưa ghép được: tổng thời lượng %(total)s, thừa %(d)s so với tối đa %(high)s. "
        "Hãy bỏ bớt hoặc rút ngắn tin bài."
    ) % {"total": format_duration(total), "d": format_duration(total - high),
         "high": format_duration(high)}


def reordered(ids: list[int], op: str, add: int | None) -> list[int]:
    """The rundown after one button: "up:<id>", "down:<id>", "remove:<id>", "add", "save"."""
    order = list(dict.fromkeys(ids))
    verb, _sep, raw = op.partition(":")
    target = parse_int(raw)
    if verb == "add" and add is not None and add not in order:
        order.append(add)
    elif target is not None and target in order:
        i = order.index(target)
        if verb == "remove":
            order.pop(i)
        elif verb == "up" and i > 0:
            order[i - 1], order[i] = order[i], order[i - 1]
        elif verb == "down" and i < len(order) - 1:
            order[i + 1], order[i] = order[i], order[i + 1]
    return order


def local_month(now: datetime, station: Station | None) -> str:
    """This month ("2024-03") in the station's time zone."""
    return (now.astimezone(ZoneInfo(station.timezone)) if station else now).strftime("%Y-%m")


def local_year(now: datetime, station: Station | None) -> int:
    return int(local_month(now, station)[:4])
