"""As-run events: what the playout PCs report they played."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base


class AsRunEvent(Base):
    __tablename__ = "as_run_events"
    __table_args__ = (Index("ix_as_run_events_broadcast_status", "broadcast_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Chosen by the device; resending a batch changes nothing.
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE")
    )
    # Set instead of broadcast_id when the device played an emergency announcement.
    emergency_id: Mapped[int | None] = mapped_column(
        ForeignKey("emergencies.id", ondelete="CASCADE"), index=True
    )
    # Set instead when the device carried a live session (a stream, no file).
    live_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="CASCADE"), index=True
    )
    # None for a relayed stream, which has no file.
    sha256: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    # A relayed stream: how long it was heard, and how often and how long it was gone.
    relayed_ms: Mapped[int | None]
    dropout_count: Mapped[int | None]
    dropout_ms: Mapped[int | None]
    note: Mapped[str | None] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(default=clock.now)


class Emergency(Base):
    """An emergency announcement (khẩn cấp): plays at once on every device in scope."""

    __tablename__ = "emergencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="RESTRICT"))
    # None: the whole station (its PC and every village); else only these villages.
    village_ids: Mapped[list[int] | None] = mapped_column(JSON)
    # The station's network kind on the day it went on air (see app.playout.scope).
    network: Mapped[str] = mapped_column(String(8), server_default="fm")
    audio_sha256: Mapped[str] = mapped_column(String(64))
    duration_ms: Mapped[int]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    # How many times its audio holds the message (an emergency from text or a recording
    # is the message said `repeat` times with a pause between).
    repeat: Mapped[int] = mapped_column(server_default="1", default=1)


class EmergencyDelivery(Base):
    """How an emergency reached one device: when its poll first returned it (pickup) and
    when the device reported starting it (its earliest as-run event of the emergency)."""

    __tablename__ = "emergency_deliveries"

    emergency_id: Mapped[int] = mapped_column(
        ForeignKey("emergencies.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # None when the device reported playing it before a pickup was recorded.
    picked_up_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]


class LiveSession(Base):
    """A person speaking live to the villages (phát trực tiếp) on a mount of the station's hub.

    Open while ``ended_at`` is null; one open session per station (a partial unique index
    would do on PostgreSQL only, so the service checks it under the station's row lock).
    What went out is recorded by the hub and kept as an audio asset once it ends.
    """

    __tablename__ = "live_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    priority: Mapped[str] = mapped_column(String(16))  # "normal" | "emergency"
    # None: the whole station; else these villages (as emergencies, app.playout.scope).
    village_ids: Mapped[list[int] | None] = mapped_column(JSON)
    network: Mapped[str] = mapped_column(String(8), server_default="fm")
    mount: Mapped[str] = mapped_column(String(100), unique=True)
    source_username: Mapped[str] = mapped_column(String(64))
    # sha256 of the session's source password (shown once, when the session opens).
    source_password_hash: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # When the hub last saw a source on the mount (None: never yet).
    source_seen_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    # Why it ended, in words ("Kết thúc" by a person, or the source gone for 60 s).
    end_reason: Mapped[str | None] = mapped_column(String(200))
    # The recording of what went out, normalised and stored (null until kept).
    recording_audio_id: Mapped[int | None] = mapped_column(
        ForeignKey("audio_assets.id", ondelete="SET NULL")
    )
    recording_ms: Mapped[int | None]
    recording_note: Mapped[str | None] = mapped_column(String(300))
