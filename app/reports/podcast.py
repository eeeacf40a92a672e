"""The CCHC column as a podcast (RSS 2.0 with the iTunes tags) for the commune website.

Public: the website reads it without a token. Only what has aired is published: CCHC
broadcasts with status ``aired`` and a master file in the store; their audio is served by
the public episode endpoints, which check the same conditions. An episode's enclosure is
the master's light listening copy (AAC in MP4, ``.m4a``: a quarter of the size or less,
for listeners on mobile data) once it is made, the master MP3 until then.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import UTC
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audio import service as audio
from app.audio.models import AudioAsset
from app.audio.pipeline.listen import LISTEN_EXT, LISTEN_MEDIA_TYPE
from app.durations import clock_format
from app.errors import NotFound
from app.schedule.models import Broadcast, BroadcastStatus, RundownItem
from app.segments.models import Segment
from app.stations import service as stations
from app.stations.models import Programme, Station

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
ATOM = "http://www.w3.org/2005/Atom"
MAX_EPISODES = 500

ET.register_namespace("itunes", ITUNES)
ET.register_namespace("atom", ATOM)


def feed_path(station_id: int) -> str:
    return f"/api/v1/stations/{station_id}/podcast.xml"


def episode_path(station_id: int, broadcast_id: int, ext: str = "mp3") -> str:
    return f"/api/v1/stations/{station_id}/podcast/{broadcast_id}.{ext}"


def episode_guid(station_id: int, broadcast_id: int) -> str:
    """Stable across fetches and hosts: the station and the broadcast."""
    return f"loaxa:station:{station_id}:broadcast:{broadcast_id}"


def _cchc(session: Session, station: Station) -> Programme | None:
    return session.scalar(
        select(Programme).where(Programme.station_id == station.id, Programme.code == stations.CCHC)
    )


def _published(session: Session, station: Station, programme: Programme) -> list[Broadcast]:
    return list(
        session.scalars(
            select(Broadcast)
            .where(
                Broadcast.station_id == station.id,
                Broadcast.programme_id == programme.id,
                Broadcast.status == BroadcastStatus.aired.value,
                Broadcast.master_sha256.is_not(None),
            )
            .order_by(Broadcast.starts_at.desc(), Broadcast.id.desc())
            .limit(MAX_EPISODES)
        )
    )


def _scripts(session: Session, broadcast_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    """Each broadcast's segments as (title, script), in rundown order."""
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    if not broadcast_ids:
        return out
    rows = session.execute(
        select(RundownItem.broadcast_id, Segment.title, Segment.script)
        .join(Segment, Segment.id == RundownItem.segment_id)
        .where(RundownItem.broadcast_id.in_(broadcast_ids))
        .order_by(RundownItem.broadcast_id, RundownItem.position)
    )
    for broadcast_id, title, script in rows:
        out[broadcast_id].append((title, script or ""))
    return out


def episode_title(programme: Programme, broadcast: Broadcast) -> str:
    """ "Chuyên mục Cải cách hành chính tháng 3/2024"."""
    year, month = broadcast.local_month.split("-")
    return f"{programme.name} tháng {int(month)}/{year}"


def _sub(parent: ET.Element, tag: str, content: str | None = None, /, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if content is not None:
        element.text = content
    return element


def podcast_feed(session: Session, *, station_id: int, base_url: str) -> bytes:
    """The RSS 2.0 feed of the station's aired CCHC columns, newest first; 404 if no station."""
    station = stations.get_station(session, station_id)
    base = base_url.rstrip("/")
    programme = _cchc(session, station)
    broadcasts = _published(session, station, programme) if programme else []
    scripts = _scripts(session, [b.id for b in broadcasts])
    store = audio.store()
    column = programme.name if programme else "Chuyên mục Cải cách hành chính"
    title = f"{column} – Đài truyền thanh xã {station.name}"
    rss = ET.Element("rss", {"version": "2.0"})
    channel = _sub(rss, "channel")
    _sub(channel, "title", title)
    _sub(channel, "link", f"{base}/")
    _sub(
        channel,
        "description",
        f"Chuyên mục tuyên truyền cải cách hành chính đã phát trên Đài truyền thanh xã "
        f"{station.name}, mỗi tháng một số.",
    )
    _sub(channel, "language", "vi")
    _sub(channel, "generator", "loaxa")
    _sub(channel, f"{{{ATOM}}}link", href=f"{base}{feed_path(station.id)}", rel="self",
         type="application/rss+xml")  # fmt: skip
    _sub(channel, f"{{{ITUNES}}}author", f"Ủy ban nhân dân xã {station.name}")
    _sub(channel, f"{{{ITUNES}}}explicit", "false")
    _sub(channel, f"{{{ITUNES}}}category", text="Government")
    if broadcasts:
        newest = max(b.updated_at for b in broadcasts)
        _sub(channel, "lastBuildDate", format_datetime(newest.astimezone(UTC), usegmt=True))
    copies = _listen_copies(session, [b.master_sha256 for b in broadcasts if b.master_sha256])
    for b in broadcasts:
        path = store.path_for(b.master_sha256 or "")
        if not path.is_file():
            continue  # the episode endpoint could not serve it
        ext, media = "mp3", "audio/mpeg"
        copy = copies.get(b.master_sha256 or "")
        if copy is not None and store.path_for(copy, LISTEN_EXT).is_file():
            path, ext, media = store.path_for(copy, LISTEN_EXT), LISTEN_EXT, LISTEN_MEDIA_TYPE
        assert programme is not None
        name = episode_title(programme, b)
        parts = scripts.get(b.id, [])
        text = "\n\n".join(f"{t}\n{s}".strip() for t, s in parts) or name
        item = _sub(channel, "item")
        _sub(item, "title", name)
        _sub(item, "description", text)
        _sub(item, "pubDate", format_datetime(b.starts_at.astimezone(UTC), usegmt=True))
        _sub(item, "guid", episode_guid(station.id, b.id), isPermaLink="false")
        _sub(
            item,
            "enclosure",
            url=f"{base}{episode_path(station.id, b.id, ext)}",
            length=str(path.stat().st_size),
            type=media,
        )
        if b.master_duration_ms:
            _sub(item, f"{{{ITUNES}}}duration", clock_format(b.master_duration_ms, hours=True))
        _sub(item, f"{{{ITUNES}}}summary", text)
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True)


def _listen_copies(session: Session, shas: list[str]) -> dict[str, str]:
    """The listening copy of each of these masters that has one."""
    rows = session.execute(
        select(AudioAsset.sha256, AudioAsset.listen_sha256).where(
            AudioAsset.sha256.in_(shas), AudioAsset.listen_sha256.is_not(None)
        )
    )
    return {sha: str(copy) for sha, copy in rows}


def episode_listen_file(
    session: Session, *, station_id: int, broadcast_id: int
) -> tuple[Path, str]:
    """The listening copy of the master of an aired CCHC broadcast, and its sha256; 404
    while it has none."""
    _, master = episode_file(session, station_id=station_id, broadcast_id=broadcast_id)
    copy = _listen_copies(session, [master]).get(master)
    path = audio.store().path_for(copy, LISTEN_EXT) if copy else None
    if path is None or not path.is_file():
        raise NotFound(f"episode {broadcast_id} has no listening copy yet")
    return path, str(copy)


def episode_file(session: Session, *, station_id: int, broadcast_id: int) -> tuple[Path, str]:
    """The master of an aired CCHC broadcast of the station, and its sha256; else 404."""
    broadcast = session.get(Broadcast, broadcast_id)
    station = session.get(Station, station_id)
    programme = _cchc(session, station) if station else None
    if (
        broadcast is None
        or programme is None
        or broadcast.station_id != station_id
        or broadcast.programme_id != programme.id
        or broadcast.status != BroadcastStatus.aired.value
        or not broadcast.master_sha256
    ):
        raise NotFound(f"no published episode {broadcast_id} for station {station_id}")
    path = audio.store().path_for(broadcast.master_sha256)
    if not path.is_file():
        raise NotFound(f"no published episode {broadcast_id} for station {station_id}")
    return path, broadcast.master_sha256
