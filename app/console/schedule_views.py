"""What the Lịch phát pages show, gathered with the same services as the API.

- The year's calendar as a list of months (a phone reads a list, not a 12-column grid):
  each month's CCHC broadcast(s) one by one, its village slots counted by status, and one
  month opened slot by slot on request.
- A broadcast's rundown (app.schedule.assembly.rundown_view, as the API's), the approved
  segments that may be added to it (those that already aired elsewhere marked), the window
  in words, the fill's proposal ("Tự động xếp", app.schedule.filling.propose: the
  scheduler's own rule), and how it aired: when, on which devices, which villages did not
  hear it (the as-run log judged by app.playout.aired, the rule the report uses).

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
from app.console.i18n import _, format_duration, format_month
from app.devices.models import Device
from app.playout.aired import is_aired, master_histories
from app.playout.models import AsRunEvent
from app.playout.scope import carries_broadcast
from app.reports.service import villages_in_service
from app.schedule import filling
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
    # Relays of national and provincial radio (a slot every day): counted by outcome, and
    # listed one by one only in the opened month.
    relay_counts: Counter[str] = field(default_factory=Counter)
    relay_lines: list[Line] = field(default_factory=list)

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
        if programmes[b.programme_id].is_relay:
            month.relay_counts[status] += 1
            if b.local_month == opened:
                month.relay_lines.append(Line(b, programmes[b.programme_id], None, status))
            continue
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
class Play:
    """One device's played report of a broadcast."""

    device: str
    village: str | None
    started_at: datetime
    played_ms: int
    counts: bool  # it played the master in force then (app.playout.aired)


@dataclass
class Airing:
    """How a broadcast aired, from the as-run log of the devices that carry it."""

    plays: list[Play] = field(default_factory=list)  # counted plays, first per device
    outdated: list[Play] = field(default_factory=list)  # played an older master: not counted
    unheard: list[str] = field(default_factory=list)  # villages in service with no counted play

    @property
    def first_at(self) -> datetime | None:
        return min((p.started_at for p in self.plays), default=None)

    @property
    def longest_ms(self) -> int:
        return max((p.played_ms for p in self.plays), default=0)


@dataclass
class BroadcastPage:
    broadcast: Broadcast
    programme: Programme
    village: str | None
    status: str
    rundown: RundownOut
    addable: list[tuple[Segment, int]]  # approved segments with audio, and their duration
    editable: bool
    # Segments (in the rundown or addable) that aired in another broadcast: where, when.
    aired_elsewhere: dict[int, list[Broadcast]] = field(default_factory=dict)
    airing: Airing = field(default_factory=Airing)
    had_master: bool = False  # assembled once (its audit trail): a rundown change remakes it

    @property
    def past(self) -> bool:
        """Aired, missed or cancelled: the page tells what happened, not what to do."""
        return not self.editable

    @property
    def assembled(self) -> bool:
        return self.broadcast.status == BroadcastStatus.assembled.value

    @property
    def remakes(self) -> bool:
        """Saving a changed rundown makes the master again (when it fits)."""
        return self.assembled or (self.editable and self.had_master)


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
            .order_by(Segment.target_month.desc(), Segment.id)
            .limit(100)
        )
        addable = [(s, d) for s, d in session.execute(stmt).tuples() if s.id not in in_rundown]
    seen = list(in_rundown) + [s.id for s, _d in addable]
    return BroadcastPage(
        broadcast=broadcast,
        programme=programme,
        village=village.name if village else None,
        status=shown_status(broadcast, filled),
        rundown=rundown,
        addable=addable,
        editable=editable,
        aired_elsewhere=schedule.aired_elsewhere(session, broadcast=broadcast, segment_ids=seen),
        airing=airing(session, broadcast),
        had_master=master_histories(session, [broadcast.id])[broadcast.id].known,
    )


def airing(session: Session, broadcast: Broadcast) -> Airing:
    """Who played the broadcast and when; for a commune broadcast on an ip network, the
    villages whose cluster was in service and reported no counted play."""

    rows = session.execute(
        select(
            Device.id,
            Device.name,
            Device.village_id,
            AsRunEvent.status,
            AsRunEvent.sha256,
            AsRunEvent.started_at,
            AsRunEvent.ended_at,
        )
        .join(Device, Device.id == AsRunEvent.device_id)
        .join(Broadcast, Broadcast.id == AsRunEvent.broadcast_id)
        .where(
            AsRunEvent.broadcast_id == broadcast.id,
            carries_broadcast(Device.station_id, Device.village_id),
        )
        .order_by(AsRunEvent.started_at, Device.name)
    ).all()
    found = Airing()
    if not rows and broadcast.village_id is not None:
        return found
    names = dict(
        session.execute(
            select(Village.id, Village.name).where(Village.station_id == broadcast.station_id)
        )
        .tuples()
        .all()
    )
    history = master_histories(session, [broadcast.id])[broadcast.id]
    heard: set[int | None] = set()
    counted: set[int] = set()
    for device_id, name, village_id, status, sha, started, ended in rows:
        if status != "played":
            continue
        ms = max(0, int((ended - started).total_seconds() * 1000))
        counts = is_aired(status, sha, started, history)
        play = Play(name, names.get(village_id) if village_id else None, started, ms, counts)
        if counts and device_id not in counted:
            counted.add(device_id)
            found.plays.append(play)
            heard.add(village_id)
        elif not counts:
            found.outdated.append(play)
    if broadcast.village_id is None and broadcast.network == "ip":
        clusters = session.execute(
            select(Device.village_id, Device.created_at).where(
                Device.station_id == broadcast.station_id,
                Device.village_id.is_not(None),
                Device.is_active.is_(True),
            )
        ).tuples()
        in_service = villages_in_service(
            [(v, c) for v, c in clusters if v is not None], broadcast.starts_at
        )
        found.unheard = sorted(names[v] for v in in_service - heard if v in names)
    return found


@dataclass
class Proposal:
    """What "Tự động xếp" would put in the rundown, and why when it puts nothing."""

    items: list[tuple[int, str, int]]  # segment id, title, duration
    total_ms: int
    window_ms: tuple[int, int]
    missing_ms: int
    offered: int  # approved segments there were to choose from
    same_as_now: bool

    @property
    def fits(self) -> bool:
        low, high = self.window_ms
        return bool(self.items) and low <= self.total_ms <= high


def proposal(session: Session, *, user: User, broadcast_id: int) -> Proposal:
    """The fill's own proposal for this broadcast (app.schedule.filling.propose); nothing
    is saved."""
    broadcast = schedule.get_broadcast(session, broadcast_id, user=user)
    programme = session.get_one(Programme, broadcast.programme_id)
    result = filling.propose(session, broadcast)
    rows = session.execute(
        select(Segment.id, Segment.title, AudioAsset.duration_ms)
        .join(AudioAsset, AudioAsset.id == Segment.audio_id)
        .where(Segment.id.in_(result.segment_ids))
    ).tuples()
    by_id = {sid: (sid, title, ms) for sid, title, ms in rows}
    return Proposal(
        items=[by_id[sid] for sid in result.segment_ids if sid in by_id],
        total_ms=result.total_ms,
        window_ms=(programme.min_duration_ms, programme.max_duration_ms),
        missing_ms=result.missing_ms,
        offered=result.offered,
        same_as_now=result.segment_ids == schedule.rundown_segment_ids(session, broadcast.id),
    )


def proposal_problem(found: Proposal, month: str) -> str | None:
    """Why the proposal puts nothing in the rundown, in words (None when it has items)."""
    if found.items:
        return None
    if not found.offered:
        return _(
            "Chưa xếp được: không có tin bài nào của tháng %(month)s đã duyệt, có âm thanh "
            "và chưa nằm trong buổi phát khác. Hãy duyệt tin bài của tháng này trước. "
            "Chưa lưu gì."
        ) % {"month": format_month(month)}
    return _(
        "Chưa xếp được: %(n)s tin bài đã duyệt của tháng %(month)s đều dài hơn mức tối đa "
        "%(high)s của buổi phát. Chưa lưu gì."
    ) % {"n": found.offered, "month": format_month(month),
         "high": format_duration(found.window_ms[1])}


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


def reordered(ids: list[int], op: str, add: list[int]) -> list[int]:
    """The rundown after one button: "up:<id>", "down:<id>", "remove:<id>", "add" (the
    ticked segments, in the order listed), "save"."""
    order = list(dict.fromkeys(ids))
    verb, _sep, raw = op.partition(":")
    target = parse_int(raw)
    if verb == "add":
        order += [sid for sid in dict.fromkeys(add) if sid not in order]
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
