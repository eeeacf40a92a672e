"""Device playlists: the day's playable broadcasts a device carries, as JSON or M3U.

A playlist is computed live on every poll, in ONE statement that finds the device by its
token hash and, in the same round trip, its broadcasts of the day (see polldb). Nothing
is stored or cached between requests, so a cancelled broadcast or a changed rundown
leaves the playlist at once; the ETag is a hash of the body, so an unchanged playlist
costs a 304. Which broadcasts a device carries is scope.carries_broadcast.

Two items of a day that overlap on the device (a village slot and the commune's programme
on one cluster of an ``ip`` station, which planning refuses but an older plan may hold)
cannot both play: the playlist says which wins. Precedence: the higher priority level
(emergency, then priority, then normal), then the commune's programme over the village's,
then the earlier start, then the lower broadcast id. Each item carries its ``rank`` (1 goes
first) and the event keys of the overlapping items it ``yields_to`` and ``supersedes``;
the agent plays a winner and gives up whatever yields to it (app.playout.agent.decide).
Emergency announcements are not playlist items: they interrupt everything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, bindparam, join, literal_column, or_, select
from sqlalchemy.orm import Session

from app import clock
from app.audio.models import AudioAsset
from app.devices.models import Device
from app.devices.service import (
    DEVICE_COLUMNS,
    N_DEVICE_COLUMNS,
    DeviceState,
    Telemetry,
    device_from_row,
)
from app.playout.polldb import poll_execute, touch_device
from app.playout.scope import carries_broadcast
from app.schedule.filling import PRIORITY_RANK
from app.schedule.models import Broadcast, BroadcastStatus
from app.segments.models import Segment, SegmentStatus
from app.stations.models import Programme, Station
from app.streams.mounts import stream_url
from app.urls import audio_url

log = logging.getLogger(__name__)

PLAYABLE = (
    BroadcastStatus.assembled.value,
    BroadcastStatus.aired.value,
    BroadcastStatus.missed.value,
)
# A relay has no master: it is ready as soon as it is planned.
RELAY_PLAYABLE = (BroadcastStatus.planned.value, *PLAYABLE)


@dataclass(slots=True)
class PlaylistEntry:
    broadcast_id: int
    programme: str
    title: str
    priority: str
    starts_at: datetime
    duration_ms: int
    sha256: str | None  # None for a relayed stream
    village_id: int | None = None  # None: the commune's programme
    stream: str | None = None  # a relay: its programme's code (its mount on the hub)
    # Set by with_precedence.
    rank: int = 1
    yields_to: tuple[str, ...] = ()
    supersedes: tuple[str, ...] = ()

    @property
    def event_key(self) -> str:
        """The item's stable key in playlists and the agent's journal."""
        return f"b{self.broadcast_id}"

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(milliseconds=self.duration_ms)

    def precedence(self) -> tuple[int, int, datetime, int]:
        """Sort key: the first wins (see precedence)."""
        return precedence(self.priority, self.village_id, self.starts_at, self.broadcast_id)


def precedence(
    priority: str, village_id: int | None, starts_at: datetime, broadcast_id: int
) -> tuple[int, int, datetime, int]:
    """Which of two overlapping broadcasts plays on a device: the smaller key (see the
    module's docstring)."""
    return (
        PRIORITY_RANK.get(priority, len(PRIORITY_RANK)),
        0 if village_id is None else 1,
        starts_at,
        broadcast_id,
    )


def with_precedence(items: list[PlaylistEntry]) -> list[PlaylistEntry]:
    """The day's items, in start order, with rank, yields_to and supersedes filled in.

    On the poll's hot path: one sort, and a forward scan that stops at the first item
    starting after the current one ends.
    """
    if len(items) < 2:
        return items
    for rank, item in enumerate(sorted(items, key=PlaylistEntry.precedence), start=1):
        item.rank = rank
    for k, item in enumerate(items):
        ends = item.ends_at
        for other in items[k + 1 :]:
            if other.starts_at >= ends:
                break
            winner, loser = (item, other) if item.rank < other.rank else (other, item)
            winner.supersedes += (loser.event_key,)
            loser.yields_to += (winner.event_key,)
    return items


@dataclass(frozen=True)
class Fallback:
    """What a relay's device plays while the stream is gone: the station's chosen segment."""

    sha256: str
    duration_ms: int


@dataclass(frozen=True)
class Playlist:
    device: DeviceState
    day: date
    items: list[PlaylistEntry]
    fallback: Fallback | None = None


@lru_cache(maxsize=1)
def _fallback_statement() -> Select[Any]:
    return (
        select(AudioAsset.sha256, AudioAsset.duration_ms)
        .select_from(Station)
        .join(Segment, Segment.id == Station.relay_fallback_segment_id)
        .join(AudioAsset, AudioAsset.id == Segment.audio_id)
        .where(
            Station.id == bindparam("station_id"),
            Segment.station_id == Station.id,
            # An inline constant: on PostgreSQL poll statements run as compiled SQL with
            # only the named parameters (app.playout.polldb).
            Segment.status == literal_column(f"'{SegmentStatus.approved.value}'"),
        )
    )


def relay_fallback(station_id: int) -> Fallback | None:
    """The station's relay fallback (an approved segment with audio), if it has one."""
    rows = poll_execute(_fallback_statement(), {"station_id": station_id})
    return Fallback(rows[0][0], rows[0][1]) if rows else None


def _listed(lo: Any, hi: Any) -> ColumnElement[bool]:
    """SQL: the Broadcast row (joined to its Programme) goes into a playlist in [lo, hi):
    playable with its master, or a relay of a stream, ready once planned."""
    return and_(
        Broadcast.starts_at >= lo,
        Broadcast.starts_at < hi,
        # Inline constants: the poll statement is compiled once to plain SQL.
        or_(
            and_(
                Broadcast.status.in_([literal_column(f"'{s}'") for s in PLAYABLE]),
                Broadcast.master_sha256.is_not(None),
                Broadcast.master_duration_ms.is_not(None),
            ),
            and_(
                Programme.source_kind.is_not(None),
                Broadcast.status.in_([literal_column(f"'{s}'") for s in RELAY_PLAYABLE]),
            ),
        ),
    )


def _with_programme() -> Any:
    return join(Broadcast, Programme, Programme.id == Broadcast.programme_id)


@lru_cache(maxsize=1)
def _playlist_statement() -> Select[Any]:
    # Built once; executed with bind parameters so its compiled form is reused too.
    return (
        select(
            *DEVICE_COLUMNS,
            Broadcast.id,
            Broadcast.starts_at,
            Broadcast.priority,
            Broadcast.master_sha256,
            Broadcast.master_duration_ms,
            Programme.code,
            Programme.name,
            Broadcast.village_id,
            Programme.source_kind,
            Programme.max_duration_ms,
        )
        .select_from(Device)
        .join(Station, Station.id == Device.station_id)
        .outerjoin(
            _with_programme(),
            and_(
                carries_broadcast(Device.station_id, Device.village_id),
                _listed(bindparam("lo"), bindparam("hi")),
            ),
        )
        .where(Device.token_hash == bindparam("token_hash"))
        .order_by(Broadcast.starts_at, Broadcast.id)
    )


def _candidate_window(day: date | None, now: datetime) -> tuple[datetime, datetime]:
    # The station's zone is read in the same query as the rows, so fetch a UTC window wide
    # enough for any zone (UTC-12 to UTC+14) and keep the local day's rows afterwards.
    first, last = (
        (day, day)
        if day is not None
        else (now.date() - timedelta(days=1), now.date() + timedelta(days=1))
    )
    lo = datetime.combine(first - timedelta(days=1), time(0), tzinfo=UTC)
    hi = datetime.combine(last + timedelta(days=2), time(0), tzinfo=UTC)
    return lo, hi


def device_playlist(*, token_hash: str, day: date | None = None) -> Playlist:
    """The device's playlist for a local day (default: its station's today), in one query."""
    now = clock.now()
    lo, hi = _candidate_window(day, now)
    rows = poll_execute(_playlist_statement(), {"token_hash": token_hash, "lo": lo, "hi": hi})
    device = device_from_row(rows[0] if rows else None)
    tz = ZoneInfo(device.timezone)
    if day is None:
        day = now.astimezone(tz).date()
    items = []
    for row in rows:
        b_id, starts_at, priority, sha, dur, code, name, village_id, source, window = row[
            N_DEVICE_COLUMNS:
        ]
        if b_id is None or starts_at.astimezone(tz).date() != day:
            continue
        starts_at = starts_at.astimezone(UTC)
        if source is not None:  # a relay plays its exact window from the hub, no file
            items.append(
                PlaylistEntry(
                    b_id, code, name, priority, starts_at, window, None, village_id, stream=code
                )
            )
            continue
        items.append(PlaylistEntry(b_id, code, name, priority, starts_at, dur, sha, village_id))
    fallback = relay_fallback(device.station_id) if any(i.stream for i in items) else None
    return Playlist(device=device, day=day, items=with_precedence(items), fallback=fallback)


def pull_playlist(*, token_hash: str, day: date | None, telemetry: Telemetry) -> Playlist:
    """A device pulls its playlist: read it, and note the pull when that is due."""
    playlist = device_playlist(token_hash=token_hash, day=day)
    touch_device(playlist.device, telemetry, pulled_playlist=True)
    return playlist


@lru_cache(maxsize=16384)
def _item_times(starts_at: datetime, duration_ms: int, tz: ZoneInfo) -> tuple[str, str, str]:
    """An item's start (UTC, local) and end as the JSON writes them.

    Cached: formatting dates is a third of a poll's Python work, and the same instants
    recur in thousands of playlists (a commune's broadcast in each of its villages', and
    the stations' common slot times).
    """
    return (
        starts_at.isoformat(),
        starts_at.astimezone(tz).isoformat(),
        (starts_at + timedelta(milliseconds=duration_ms)).isoformat(),
    )


def playlist_document(playlist: Playlist, *, base_url: str) -> dict[str, Any]:
    """The playlist as the JSON the endpoint sends."""
    tz = ZoneInfo(playlist.device.timezone)
    times = [_item_times(i.starts_at, i.duration_ms, tz) for i in playlist.items]
    return {
        "date": playlist.day.isoformat(),
        "device_id": playlist.device.id,
        "station_id": playlist.device.station_id,
        "village_id": playlist.device.village_id,
        "timezone": playlist.device.timezone,
        "items": [
            {
                "event_key": i.event_key,
                "broadcast_id": i.broadcast_id,
                "programme": i.programme,
                "title": i.title,
                "priority": i.priority,
                "village_id": i.village_id,
                "rank": i.rank,
                "yields_to": list(i.yields_to),
                "supersedes": list(i.supersedes),
                "starts_at": starts,
                "starts_at_local": local,
                "ends_at": ends,
                "duration_ms": i.duration_ms,
                **_source(i, playlist.device.station_id, base_url),
                **_fallback(i, playlist.fallback, base_url),
            }
            for i, (starts, local, ends) in zip(playlist.items, times, strict=True)
        ],
    }


def _source(item: PlaylistEntry, station_id: int, base_url: str) -> dict[str, Any]:
    """Where the item's sound comes from: a stored file, or a relay's mount on the hub."""
    if item.stream is not None:
        return {
            "kind": "stream",
            "stream_url": stream_url(base_url, station_id, item.stream),
            "sha256": None,
            "audio_url": None,
        }
    assert item.sha256 is not None
    return {
        "kind": "file",
        "stream_url": None,
        "sha256": item.sha256,
        "audio_url": audio_url(base_url, item.sha256),
    }


def _fallback(item: PlaylistEntry, fallback: Fallback | None, base_url: str) -> dict[str, Any]:
    """A relay's fallback, for its dropouts (only on stream items, only when set)."""
    if item.stream is None or fallback is None:
        return {}
    return {
        "fallback_sha256": fallback.sha256,
        "fallback_audio_url": audio_url(base_url, fallback.sha256),
        "fallback_duration_ms": fallback.duration_ms,
    }


def render_m3u(playlist: Playlist, *, base_url: str) -> bytes:
    """Extended M3U8: #EXTINF with whole seconds and the title, then the absolute URL; an
    item that yields to an overlapping one is left out."""
    tz = ZoneInfo(playlist.device.timezone)
    lines = ["#EXTM3U", f"#PLAYLIST:loaxa {playlist.day.isoformat()}"]
    # A plain player cannot follow precedence: it gets only the items that yield to none.
    for i in (i for i in playlist.items if not i.yields_to):
        title = " ".join(i.title.split())  # one line, whatever the title holds
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{i.starts_at.astimezone(tz).isoformat()}")
        lines.append(f"#EXTINF:{round(i.duration_ms / 1000)},{title}")
        source = _source(i, playlist.device.station_id, base_url)
        lines.append(source["stream_url"] or source["audio_url"])
    return ("\n".join(lines) + "\n").encode("utf-8")


def count_playlists(session: Session, *, day: date, station_ids: list[int] | None = None) -> int:
    """Count the active devices whose playlist has items on `day` (their station's local day).

    Nothing is published: playlists are computed live from the broadcasts on every poll,
    so every change shows at once. The scheduler calls this nightly to log what the
    devices will get; it is read-only and safe to run any number of times.
    """
    lo, hi = _candidate_window(day, clock.now())
    stmt = (
        select(Device.id, Station.timezone, Broadcast.starts_at)
        .join(Station, Station.id == Device.station_id)
        .join(
            _with_programme(),
            and_(carries_broadcast(Device.station_id, Device.village_id), _listed(lo, hi)),
        )
        .where(Device.is_active)
    )
    if station_ids is not None:
        stmt = stmt.where(Device.station_id.in_(station_ids))
    with_items = {
        device_id
        for device_id, tz, starts_at in session.execute(stmt)
        if starts_at.astimezone(ZoneInfo(tz)).date() == day
    }
    log.info("playlists for %s: %d device(s) with items", day.isoformat(), len(with_items))
    return len(with_items)
