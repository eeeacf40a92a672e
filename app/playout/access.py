"""Who may download which audio file (GET /api/v1/audio/{sha256}).

It sits with playout, above audio: the answer depends on broadcasts, segments, stations
and emergencies, which the audio store knows nothing about.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.audio.models import AudioAsset
from app.audio.pipeline.listen import LISTEN_EXT, LISTEN_MEDIA_TYPE
from app.audio.service import store
from app.devices.models import Device
from app.errors import NotFound
from app.playout.emergencies import active_emergency_audio
from app.playout.scope import carries_broadcast
from app.schedule.models import Broadcast, BroadcastStatus
from app.segments.models import Segment
from app.stations.models import Station

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_can_fetch(session: Session, principal: User | Device, sha256: str) -> None:
    """Staff fetch their station's audio, and the listening copies of it; a device only
    masters of broadcasts it plays (never a listening copy: playout keeps the full file).

    Unknown and forbidden look the same (404), so a device cannot probe for files.
    """
    if isinstance(principal, Device):
        stmt = select(Broadcast.id).where(
            Broadcast.master_sha256 == sha256,
            carries_broadcast(principal.station_id, principal.village_id),
            Broadcast.status != BroadcastStatus.cancelled.value,
        )
        # ... and the audio of an active emergency in its scope, and its station's relay
        # fallback (what fills a relayed stream's dropouts).
        if (
            session.scalar(stmt.limit(1)) is None
            and not active_emergency_audio(
                session,
                station_id=principal.station_id,
                village_id=principal.village_id,
                sha256=sha256,
            )
            and not _is_relay_fallback(session, principal.station_id, sha256)
        ):
            raise NotFound("no audio with that sha256 in this device's playlists")
        return
    named = or_(AudioAsset.sha256 == sha256, AudioAsset.listen_sha256 == sha256)
    if principal.role == Role.admin:
        if session.scalar(select(AudioAsset.id).where(named).limit(1)) is None:
            raise NotFound("no audio with that sha256")
        return
    in_station = session.scalar(
        select(AudioAsset.id)
        .where(named)
        .where(
            or_(
                AudioAsset.id.in_(
                    select(Segment.audio_id).where(Segment.station_id == principal.station_id)
                ),
                AudioAsset.sha256.in_(
                    select(Broadcast.master_sha256).where(
                        Broadcast.station_id == principal.station_id
                    )
                ),
            )
        )
        .limit(1)
    )
    if in_station is None:
        raise NotFound("no audio with that sha256")


def _is_relay_fallback(session: Session, station_id: int, sha256: str) -> bool:
    found = session.scalar(
        select(Station.id)
        .join(Segment, Segment.id == Station.relay_fallback_segment_id)
        .join(AudioAsset, AudioAsset.id == Segment.audio_id)
        .where(Station.id == station_id, AudioAsset.sha256 == sha256)
    )
    return found is not None


def fetchable_file(session: Session, *, principal: User | Device, sha256: str) -> Path:
    """The stored file of sha256 (a playout MP3, or a listening copy's ``.m4a``) if the
    principal may fetch it; 404 otherwise."""
    if not SHA256.match(sha256):
        raise NotFound("no audio with that sha256")
    check_can_fetch(session, principal, sha256)
    for ext in ("mp3", LISTEN_EXT):
        path = store().path_for(sha256, ext)
        if path.is_file():
            return path
    raise NotFound("no audio with that sha256")


def media_type(path: Path) -> str:
    """The Content-Type of a stored file."""
    return LISTEN_MEDIA_TYPE if path.suffix == f".{LISTEN_EXT}" else "audio/mpeg"
