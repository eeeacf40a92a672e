"""Live sessions in the report: "Phát trực tiếp", with their length and the villages that
carried them (from the devices' as-run events that name the session)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.devices.models import Device
from app.playout.models import AsRunEvent, LiveSession
from app.reports.schemas import LiveRow
from app.stations.models import Village

STATION_PC = "Máy ở đài"


def live_rows(
    session: Session, *, station_id: int, since: datetime, until: datetime, tz: ZoneInfo
) -> list[LiveRow]:
    """The station's live sessions opened in [since, until), oldest first."""
    sessions = session.scalars(
        select(LiveSession)
        .where(
            LiveSession.station_id == station_id,
            LiveSession.created_at >= since,
            LiveSession.created_at < until,
        )
        .order_by(LiveSession.created_at, LiveSession.id)
    ).all()
    if not sessions:
        return []
    carried: dict[int, set[str]] = {}
    rows = session.execute(
        select(AsRunEvent.live_session_id, Village.name)
        .join(Device, Device.id == AsRunEvent.device_id)
        .outerjoin(Village, Village.id == Device.village_id)
        .where(AsRunEvent.live_session_id.in_([s.id for s in sessions]))
        .distinct()
    )
    for live_id, village in rows:
        if live_id is not None:
            carried.setdefault(live_id, set()).add(village or STATION_PC)
    out = []
    for s in sessions:
        if s.recording_ms:
            duration = s.recording_ms
        elif s.ended_at is not None:
            duration = int((s.ended_at - s.created_at).total_seconds() * 1000)
        else:
            duration = 0
        out.append(
            LiveRow(
                id=s.id,
                title=s.title,
                priority=s.priority,
                started_at=s.created_at.astimezone(tz),
                ended_at=s.ended_at.astimezone(tz) if s.ended_at else None,
                duration_ms=duration,
                villages=sorted(carried.get(s.id, set())),
                recorded=s.recording_audio_id is not None,
            )
        )
    return out
