"""What the console shows of relays: today's slots in words (Trang chủ), a relay's form
values, and a probe's answer ("Nghe thử") in words. The rules are the services': the hub's
status (app.streams.status), the programmes (app.stations.service), the probe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from app.console.i18n import _
from app.stations.models import Programme, Station
from app.streams import status
from app.streams.probe import words_vi
from app.streams.schemas import ProbeOut


@dataclass(frozen=True)
class RelayLine:
    """One of today's relays as Trang chủ says it: words and a tone (good, bad, neutral)."""

    words: str
    tone: str


def today(session: Session, *, station: Station | None, now: datetime) -> list[RelayLine]:
    """The station's relays of today, each in words ("VOV1: đang nhận")."""
    if station is None:
        return []
    tz = ZoneInfo(station.timezone)
    return [_line(r, tz) for r in status.todays_relays(session, station=station, now=now)]


def _line(r: status.RelayToday, tz: ZoneInfo) -> RelayLine:
    """The slot in the page's language (the API's words are status.RelayToday.words)."""
    name = r.name
    if r.phase == "upcoming":
        at = f"{r.starts_at.astimezone(tz):%H:%M}"
        return RelayLine(_("%(name)s: %(time)s") % {"name": name, "time": at}, "neutral")
    if r.phase == "on-air":
        if r.receiving:
            return RelayLine(_("%(name)s: đang nhận") % {"name": name}, "good")
        if r.receiving is False and r.since is not None:
            at = f"{r.since.astimezone(tz):%H:%M}"
            words = _("%(name)s: mất tín hiệu từ %(time)s") % {"name": name, "time": at}
            return RelayLine(words, "bad")
        return RelayLine(_("%(name)s: đang chờ tín hiệu") % {"name": name}, "neutral")
    if r.relayed:
        return RelayLine(_("%(name)s: đã tiếp sóng") % {"name": name}, "good")
    return RelayLine(_("%(name)s: không tiếp sóng được") % {"name": name}, "bad")


def relays(programmes: list[Programme]) -> list[Programme]:
    """The relays among a station's programmes."""
    return [p for p in programmes if p.is_relay]


def probe_words(found: ProbeOut) -> tuple[str, str]:
    """A probe's answer in words, and its tone."""
    if not found.ok:
        return _("Không nghe được: %(why)s.") % {"why": words_vi(found)}, "bad"
    parts = [found.codec.upper() if found.codec else _("âm thanh")]
    if found.bitrate_kbps:
        parts.append(_("%(n)s kbit/s") % {"n": found.bitrate_kbps})
    if found.hls:
        parts.append("HLS")
    return _("Nghe được: %(what)s.") % {"what": ", ".join(parts)}, "good"
