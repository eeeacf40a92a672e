"""The station's schedule as iCalendar (RFC 5545), for calendar apps to subscribe to.

One VEVENT per broadcast, cancelled ones included with ``STATUS:CANCELLED``: a client that
imported or cached the event learns that it is off instead of keeping a ghost. The UID
(``broadcast-<id>@loaxa``) never changes, and ``SEQUENCE`` is the broadcast's version, which
every change bumps, so clients update an event in place rather than duplicate it. There is
no METHOD: this is a published store, so DTSTAMP is the broadcast's last change (RFC 5545
3.8.7.2) and the file is the same bytes until something changes.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.durations import clock_format
from app.schedule.models import Broadcast, BroadcastStatus
from app.stations import service as stations
from app.stations.models import Station, Village

STATUS_LABELS = {
    BroadcastStatus.planned.value: "đã lên lịch",
    BroadcastStatus.assembled.value: "đã dựng bản phát",
    BroadcastStatus.aired.value: "đã phát",
    BroadcastStatus.missed.value: "bỏ lỡ",
    BroadcastStatus.cancelled.value: "đã hủy",
}


def broadcast_uid(broadcast_id: int) -> str:
    """The event's UID: the same for the life of the broadcast."""
    return f"broadcast-{broadcast_id}@loaxa"


def schedule_calendar(
    session: Session, *, station_id: int, user: User | None = None, year: int | None = None
) -> tuple[Station, bytes]:
    """The station's broadcasts (of one local year when given) as an iCalendar file."""
    station = stations.get_station(session, station_id, user=user)
    tz = ZoneInfo(station.timezone)
    programmes = {p.id: p for p in stations.list_programmes(session, station_id=station.id)}
    villages = {
        v.id: v.name
        for v in session.scalars(select(Village).where(Village.station_id == station.id))
    }
    stmt = (
        select(Broadcast)
        .where(Broadcast.station_id == station.id)
        .order_by(Broadcast.starts_at, Broadcast.id)
    )
    if year is not None:
        stmt = stmt.where(Broadcast.local_month.like(f"{year:04d}-%"))
    cal = Calendar()
    cal.add("prodid", "-//loaxa//Lich phat song//VI")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"Lịch phát sóng – Đài truyền thanh xã {station.name}")
    cal.add("x-wr-timezone", station.timezone)
    cal.add("x-published-ttl", "PT1H")
    for b in session.scalars(stmt):
        programme = programmes[b.programme_id]
        duration_ms = b.master_duration_ms or programme.min_duration_ms
        where = villages.get(b.village_id) if b.village_id else None
        title = f"{programme.name} – {where}" if where else programme.name
        cancelled = b.status == BroadcastStatus.cancelled.value
        event = Event()
        event.add("uid", broadcast_uid(b.id))
        event.add("dtstamp", b.updated_at)
        event.add("created", b.created_at)
        event.add("last-modified", b.updated_at)
        event.add("sequence", b.version)
        event.add("dtstart", b.starts_at)
        event.add("dtend", b.starts_at + timedelta(milliseconds=duration_ms))
        event.add("summary", f"Đã hủy: {title}" if cancelled else title)
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        event.add("transp", "TRANSPARENT")
        event.add("categories", [programme.code])
        event.add("location", where or f"Đài truyền thanh xã {station.name}")
        lines = [
            f"Trạng thái: {STATUS_LABELS.get(b.status, b.status)} ({b.status})",
            f"Chuyên mục: {programme.name} ({programme.code})",
            f"Giờ phát: {b.starts_at.astimezone(tz).strftime('%H:%M %d/%m/%Y')} "
            f"({station.timezone})",
            "Thời lượng: "
            + (
                f"{clock_format(b.master_duration_ms)} (bản phát đã dựng)"
                if b.master_duration_ms
                else f"{clock_format(programme.min_duration_ms)}–"
                f"{clock_format(programme.max_duration_ms)}"
                " (theo khung của chuyên mục)"
            ),
        ]
        if where:
            lines.insert(2, f"Thôn: {where}")
        event.add("description", "\n".join(lines))
        cal.add_component(event)
    return station, cal.to_ical()
