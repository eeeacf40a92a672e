"""Who may download which audio file."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.audio.models import AudioAsset
from app.errors import NotFound
from app.playout.service import active_emergency_audio
from app.schedule.models import Broadcast, BroadcastStatus
from app.segments.models import Segment
from app.stations.models import Device


def check_can_fetch(session: Session, principal: User | Device, sha256: str) -> None:
    """Staff fetch their station's audio; a device only masters of broadcasts it plays.

    Unknown and forbidden look the same (404), so a device cannot probe for files.
    """
    if isinstance(principal, Device):
        stmt = select(Broadcast.id).where(
            Broadcast.master_sha256 == sha256,
            Broadcast.station_id == principal.station_id,
            Broadcast.status != BroadcastStatus.cancelled.value,
        )
        # The station's PC plays the station's programmes; a village PC its village's.
        if principal.village_id is None:
            stmt = stmt.where(Broadcast.village_id.is_(None))
        else:
            stmt = stmt.where(Broadcast.village_id == principal.village_id)
        # ... and the audio of an active emergency in its scope.
        if session.scalar(stmt.limit(1)) is None and not active_emergency_audio(
            session, device=principal, sha256=sha256
        ):
            raise NotFound("no audio with that sha256 in this device's playlists")
        return
    if principal.role == Role.admin:
        if session.scalar(select(AudioAsset.id).where(AudioAsset.sha256 == sha256)) is None:
            raise NotFound("no audio with that sha256")
        return
    in_station = session.scalar(
        select(AudioAsset.id)
        .where(AudioAsset.sha256 == sha256)
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
