"""What the Thiết bị, Phát khẩn cấp and Quản trị pages show, shaped from the services' rows.

Plain functions over the rows the services return (no queries of their own beyond the
services'), so the page handlers stay thin. Words are message ids, translated in templates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.console.forms import ConsoleForm, FieldErrors
from app.console.i18n import N_, _, format_number
from app.console.labels import StatusLabel
from app.devices import service as devices
from app.devices.models import Device
from app.errors import Invalid, NotFound
from app.playout.models import Emergency
from app.playout.schemas import EmergencyCreate, EmergencyOut
from app.stations import service as stations
from app.stations.models import Station, Village

ONLINE = StatusLabel(N_("Đang kết nối"), "●", "good")
OFFLINE = StatusLabel(N_("Mất kết nối"), "✗", "bad")
NEVER = StatusLabel(N_("Chưa kết nối lần nào"), "○", "neutral")

EMERGENCY_LIVE = StatusLabel(N_("Đang phát khẩn cấp"), "!", "bad")
EMERGENCY_CANCELLED = StatusLabel(N_("Đã hủy"), "–", "neutral")
EMERGENCY_ENDED = StatusLabel(N_("Đã kết thúc"), "✓", "good")

DELIVERY_WAITING = StatusLabel(N_("Chưa nhận"), "○", "warn")
DELIVERY_PICKED = StatusLabel(N_("Đã nhận"), "◐", "info")
DELIVERY_STARTED = StatusLabel(N_("Đã phát"), "✓", "good")

# Python's weekdays (0 = Monday), as Vietnamese name them.
WEEKDAYS = [
    N_("Thứ Hai"),
    N_("Thứ Ba"),
    N_("Thứ Tư"),
    N_("Thứ Năm"),
    N_("Thứ Sáu"),
    N_("Thứ Bảy"),
    N_("Chủ nhật"),
]
WEEKS = {
    1: N_("tuần thứ nhất"),
    2: N_("tuần thứ hai"),
    3: N_("tuần thứ ba"),
    4: N_("tuần thứ tư"),
    5: N_("tuần thứ năm"),
    -1: N_("tuần cuối"),
}


def clock_time(value: datetime | None, tz: ZoneInfo) -> str:
    """17:05:09 in the station's zone (seconds count when watching an emergency arrive)."""
    return value.astimezone(tz).strftime("%H:%M:%S") if value else ""


def disk(free_bytes: int | None) -> str:
    """Free space in GB (or MB below 1 GB), with the language's decimal separator."""
    if free_bytes is None:
        return ""
    if free_bytes >= 1024**3:
        return f"{format_number(free_bytes / 1024**3)} GB"
    return f"{format_number(free_bytes / 1024**2, 0)} MB"


# Below this much free space a playout PC is flagged on Thiết bị: it caches the coming days'
# audio, and a disk filling up (logs, updates) is worth a look before caching fails.
LOW_DISK_BYTES = 5 * 1024**3


@dataclass
class DeviceSummary:
    """Thiết bị's first lines: how many PCs are online, which are not, which run low on disk."""

    online: int = 0
    offline: list[str] = field(default_factory=list)  # offline or never connected, by name
    low_disk: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.online + len(self.offline)


def device_summary(found: Sequence[Device], now: datetime) -> DeviceSummary:
    """Counts and names over the active devices."""
    summary = DeviceSummary()
    for d in found:
        if not d.is_active:
            continue
        if devices.is_online(d.last_seen_at, now):
            summary.online += 1
        else:
            summary.offline.append(d.name)
        if d.free_disk_bytes is not None and d.free_disk_bytes < LOW_DISK_BYTES:
            summary.low_disk.append(f"{d.name} ({disk(d.free_disk_bytes)})")
    return summary


def connection(device: Device, now: datetime) -> StatusLabel:
    if device.last_seen_at is None:
        return NEVER
    return ONLINE if devices.is_online(device.last_seen_at, now) else OFFLINE


def station_for(db: Session, user: User, requested: int | None = None) -> Station | None:
    """The station a page works on: the user's own; an admin's choice, else the first."""
    if user.station_id is not None:
        return stations.get_station(db, user.station_id, user=user)
    if requested is not None:
        return stations.get_station(db, requested, user=user)
    return db.scalars(select(Station).order_by(Station.id).limit(1)).first()


def village_names(db: Session, station_id: int) -> dict[int, str]:
    return {v.id: v.name for v in stations.list_villages(db, station_id=station_id)}


@dataclass(frozen=True)
class EmergencyChoice:
    """What the approver chose, read from the form: checked before anything goes on air."""

    segment_id: int
    village_ids: list[int] | None  # None: the whole station


def emergency_choice(form: ConsoleForm, station_id: int) -> EmergencyChoice:
    """The choice, checked by the API's EmergencyCreate (ids strictly, in bounds)."""
    segment_id = form.int_value("segment_id", _("Hãy chọn một tin bài đã duyệt."))
    if segment_id is None:
        raise FieldErrors({"segment_id": _("Hãy chọn một tin bài đã duyệt.")})
    ids: list[int] | None = None
    if form.get("scope") == "villages":
        ids = sorted(set(form.int_list("village_ids", _("Danh sách thôn không hợp lệ."))))
        if not ids:
            raise FieldErrors({"village_ids": _("Hãy chọn ít nhất một thôn, hoặc chọn cả xã.")})
    body = form.model(
        EmergencyCreate, {"station_id": station_id, "segment_id": segment_id, "village_ids": ids}
    )
    return EmergencyChoice(segment_id, body.village_ids)


def devices_in_scope(
    db: Session, *, station_id: int, village_ids: list[int] | None
) -> list[Device]:
    """The active devices an emergency with this scope would play on (today's network)."""
    from app.playout.scope import carries_emergency
    from app.stations.models import Station
    from app.stations.network import local_today, network_on

    station = db.get_one(Station, station_id)
    network = network_on(station, local_today(station))
    return [
        d
        for d in devices.list_devices(db, station_id=station_id)
        if d.is_active and carries_emergency(village_ids, network, d.village_id)
    ]


def emergency_state(e: Emergency | EmergencyOut, now: datetime) -> StatusLabel:
    if e.cancelled_at is not None:
        return EMERGENCY_CANCELLED
    return EMERGENCY_LIVE if e.expires_at > now else EMERGENCY_ENDED


def delivery_state(picked_up_at: datetime | None, started_at: datetime | None) -> StatusLabel:
    if started_at is not None:
        return DELIVERY_STARTED
    return DELIVERY_PICKED if picked_up_at is not None else DELIVERY_WAITING


def cadence_text(cadence: dict[str, Any] | None) -> str:
    """A cadence in words, in the page's language: "hằng tháng: Thứ Bảy thứ ba, 17:00"."""
    if not cadence:
        return _("theo lịch chung")
    time = cadence.get("time", "")
    if cadence.get("kind") == "weekly":
        days = ", ".join(_(WEEKDAYS[d]) for d in cadence.get("weekdays", []) if 0 <= d <= 6)
        return _("hằng tuần: %(days)s, %(time)s") % {"days": days, "time": time}
    if cadence.get("day") is not None:
        return _("hằng tháng: ngày %(day)s, %(time)s") % {"day": cadence["day"], "time": time}
    week = WEEKS.get(cadence.get("week") or 0)
    return _("hằng tháng: %(weekday)s %(week)s, %(time)s") % {
        "weekday": _(WEEKDAYS[cadence.get("weekday") or 0]),
        "week": _(week) if week else str(cadence.get("week")),
        "time": time,
    }


def monthly_from(form: ConsoleForm) -> dict[str, Any]:
    """A monthly cadence from the programme form: n-th weekday, or a day of the month."""
    time = form.get("time").strip()
    number = _("Hãy chọn trong danh sách.")
    if form.get("by") == "day":
        day = form.int_value("day", _("Ngày trong tháng từ 1 đến 31."), high=31)
        return {"kind": "monthly", "day": day or 0, "time": time}
    raw_week = form.get("week").strip()
    week = -1 if raw_week == "-1" else (form.int_value("week", number, high=5) or 0)
    weekday = form.int_value("weekday", number, low=0, high=6) or 0
    return {"kind": "monthly", "week": week, "weekday": weekday, "time": time}


def weekly_from(form: ConsoleForm) -> dict[str, Any]:
    days = sorted(
        {int(d) for d in form.getlist("weekdays") if d in {"0", "1", "2", "3", "4", "5", "6"}}
    )
    if not days:
        raise Invalid(_("Hãy chọn ít nhất một ngày trong tuần."))
    return {"kind": "weekly", "weekdays": days, "time": form.get("time").strip()}


MINUTES = re.compile(r"([0-9]{1,4})(?::([0-5][0-9]))?")


def minutes_ms(form: ConsoleForm, name: str) -> int:
    """A duration typed as mm:ss (or whole minutes) in milliseconds, ASCII digits only;
    refused beside its field otherwise."""
    found = MINUTES.fullmatch(form.get(name).strip())
    ms = (int(found[1]) * 60 + int(found[2] or 0)) * 1000 if found else 0
    if ms <= 0:
        raise FieldErrors({name: _("Thời lượng ghi theo phút:giây, ví dụ 10:00.")})
    return ms


def village_of(db: Session, station: Station, village_id: int | None) -> Village | None:
    if village_id is None:
        return None
    village = db.get(Village, village_id)
    if village is None or village.station_id != station.id:
        raise NotFound(f"village {village_id} does not exist in station {station.id}")
    return village
