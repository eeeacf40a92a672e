"""The scheduler's warnings as the console tells them: a Vietnamese sentence with dates and
names, and a link to what it concerns; never an id, never the API's English.

The stored groups (app.schedule.warnings) keep fields as well as a message: kind, month,
stage and items (each a broadcast with its start and village). The sentence is made from
those fields here, in the person's language, so a message written for programs (the
single findings' English, an item's technical detail) never reaches a page. The computed
"scheduler not running" state (app.schedule.status) is told the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.console.i18n import N_, _, format_datetime, format_month, ngettext
from app.schedule import status as scheduler_status
from app.schedule.models import Broadcast, ScheduleWarning
from app.schedule.warnings import is_acknowledged
from app.stations.models import Programme, Village

STATION_PLACE = N_("Đài xã")
# How soon a stage means, as words.
STAGE_WORDS = {"T-7": N_("còn dưới 7 ngày"), "T-1": N_("còn dưới 1 ngày")}


@dataclass
class ShownWarning:
    id: int
    text: str
    link: str | None
    link_text: str
    acknowledged: bool
    acked_by: str | None
    acked_at: datetime | None


def scheduler_down(session: Session, *, now: datetime, tz: ZoneInfo) -> str | None:
    """The scheduler's state in words when it is down or has never run (None: running)."""
    if scheduler_status.down_warning(session, now=now) is None:
        return None
    seen = scheduler_status.last_seen(session)
    consequence = _(
        "các tháng tới chưa được lập lịch, buổi phát chưa được tự xếp tin bài và ghép, "
        "buổi bị lỡ chưa được đánh dấu. Hãy chạy lại dịch vụ trên máy chủ (lệnh loaxa up)."
    )
    if seen is None:
        return _("Bộ lập lịch chưa chạy lần nào:") + " " + consequence
    return (
        _("Bộ lập lịch không chạy từ %(when)s:") % {"when": format_datetime(seen, tz)}
        + " "
        + consequence
    )


def _when(item: dict[str, Any], tz: ZoneInfo) -> str:
    try:
        return format_datetime(datetime.fromisoformat(str(item.get("starts_at"))), tz)
    except ValueError:
        return ""


def _places(items: list[dict[str, Any]]) -> str:
    """ "Đài xã, Thôn 1 (4), Thôn 3": the station first, then the villages in their order."""
    counts: dict[str, int] = {}
    for i in sorted(items, key=lambda i: (i.get("village_id") or 0, str(i.get("village")))):
        place = i.get("village") or _(STATION_PLACE)
        counts[place] = counts.get(place, 0) + 1
    return ", ".join(f"{p} ({n})" if n > 1 else p for p, n in counts.items())


def _month_link(month: str) -> str:
    return f"/schedule?month={month}#m-{month}"


def describe(
    w: ScheduleWarning, *, tz: ZoneInfo, broadcasts: dict[int, tuple[Broadcast, str, str | None]]
) -> tuple[str, str | None, str]:
    """The warning's sentence, the link to what it concerns, and the link's words."""
    items = [i for i in (w.items or []) if "broadcast_id" in i]
    month = w.month or ""
    head = _("Tháng %(month)s") % {"month": format_month(month)} if month else ""
    stage = _(STAGE_WORDS[w.stage]) if w.stage in STAGE_WORDS else None
    one = items[0] if len(items) == 1 else None
    link: str | None = _month_link(month) if month else None
    link_text = _("Xem lịch tháng %(month)s") % {"month": format_month(month)} if month else ""
    if one is not None:
        link, link_text = f"/schedule/{one['broadcast_id']}", _("Xem buổi phát")
    n = len(items)
    if w.kind == "cchc-missing":
        text = _("%(head)s chưa có buổi phát chuyên mục CCHC trong lịch.") % {"head": head}
        if stage:
            text += " " + _("Tháng sắp hết (%(stage)s).") % {"stage": stage}
        return text, link, link_text
    if w.kind == "missed":
        if one is not None:
            text = _(
                "Buổi phát %(when)s (%(place)s) không có máy phát nào báo đã phát."
            ) % {"when": _when(one, tz), "place": _places(items)}
        else:
            text = ngettext(
                "%(head)s: %(num)s buổi phát không có máy phát nào báo đã phát: %(places)s.",
                "%(head)s: %(num)s buổi phát không có máy phát nào báo đã phát: %(places)s.",
                n,
            ) % {"head": head, "num": n, "places": _places(items)}
        return text, link, link_text
    if w.kind == "underfilled":
        if one is not None:
            text = _(
                "Buổi phát %(when)s (%(place)s) chưa đủ tin bài đã duyệt để đạt thời lượng "
                "tối thiểu."
            ) % {"when": _when(one, tz), "place": _places(items)}
        else:
            text = ngettext(
                "%(head)s: %(num)s buổi phát chưa đủ tin bài đã duyệt: %(places)s.",
                "%(head)s: %(num)s buổi phát chưa đủ tin bài đã duyệt: %(places)s.",
                n,
            ) % {"head": head, "num": n, "places": _places(items)}
        return text, link, link_text
    if w.kind in ("cchc-unassembled", "cchc-outside-window"):
        what = (
            _("chưa được ghép")
            if w.kind == "cchc-unassembled"
            else _("có tổng thời lượng ngoài khung cho phép")
        )
        whens = ", ".join(_when(i, tz) for i in items)
        text = _("Buổi phát chuyên mục CCHC %(when)s %(what)s.") % {"when": whens, "what": what}
        if stage:
            text += " " + _("Sắp đến giờ phát (%(stage)s).") % {"stage": stage}
        return text, link, link_text
    if w.kind == "overlap" and w.broadcast_id in broadcasts:
        b, programme, village = broadcasts[w.broadcast_id]
        text = _(
            "Buổi phát %(when)s (%(programme)s%(village)s) trùng giờ với một buổi phát khác "
            "trên cùng cụm loa, nên sẽ không phát ở đó."
        ) % {
            "when": format_datetime(b.starts_at, tz),
            "programme": programme,
            "village": f", {village}" if village else "",
        }
        return text, f"/schedule/{b.id}", _("Xem buổi phát")
    if w.kind == "overlap":
        text = _(
            "Lịch phát của một thôn trùng giờ với chuyên mục của xã trên cùng cụm loa: "
            "hãy đổi giờ phát của thôn hoặc của chuyên mục."
        )
        return text, "/schedule", _("Xem lịch")
    if w.broadcast_id in broadcasts:
        b, programme, village = broadcasts[w.broadcast_id]
        text = _("Bộ lập lịch có cảnh báo về buổi phát %(when)s (%(programme)s%(village)s).") % {
            "when": format_datetime(b.starts_at, tz),
            "programme": programme,
            "village": f", {village}" if village else "",
        }
        return text, f"/schedule/{b.id}", _("Xem buổi phát")
    return _("Bộ lập lịch có một cảnh báo %(head)s.") % {"head": head.lower()}, link, link_text


def shown(
    session: Session, rows: list[ScheduleWarning], *, tz: ZoneInfo
) -> list[ShownWarning]:
    """The warnings as sentences with links, and who acknowledged them."""
    ids = {w.broadcast_id for w in rows if w.broadcast_id is not None}
    broadcasts: dict[int, tuple[Broadcast, str, str | None]] = {}
    if ids:
        found = session.execute(
            select(Broadcast, Programme.name, Village.name)
            .join(Programme, Programme.id == Broadcast.programme_id)
            .join(Village, Village.id == Broadcast.village_id, isouter=True)
            .where(Broadcast.id.in_(ids))
        ).tuples()
        broadcasts = {b.id: (b, p, v) for b, p, v in found}
    ackers = {w.acked_by_id for w in rows if w.acked_by_id is not None}
    names: dict[int, str] = {}
    if ackers:
        names = dict(
            session.execute(select(User.id, User.username).where(User.id.in_(ackers)))
            .tuples()
            .all()
        )
    out = []
    for w in rows:
        text, link, link_text = describe(w, tz=tz, broadcasts=broadcasts)
        out.append(
            ShownWarning(
                id=w.id,
                text=text,
                link=link,
                link_text=link_text,
                acknowledged=is_acknowledged(w),
                acked_by=names.get(w.acked_by_id) if w.acked_by_id is not None else None,
                acked_at=w.acked_at,
            )
        )
    return out
