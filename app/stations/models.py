"""Stations (communes), their villages, programmes and playout devices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base


class Station(Base):
    """A commune radio station (Đài truyền thanh xã)."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Ho_Chi_Minh")
    hotline: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Village(Base):
    """A village (thôn) with one loudspeaker cluster."""

    __tablename__ = "villages"
    __table_args__ = (
        UniqueConstraint("station_id", "name"),
        # What broadcasts reference, so that a broadcast's village is one of its station's.
        UniqueConstraint("id", "station_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    # Overrides the village programme's cadence for this village (days of week and time).
    cadence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Programme(Base):
    """A recurring column (chuyên mục) with its cadence and duration window, as data."""

    __tablename__ = "programmes"
    __table_args__ = (
        UniqueConstraint("station_id", "code"),
        # What broadcasts reference, so that a broadcast's programme is its station's.
        UniqueConstraint("id", "station_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    # "station": airs on the commune radio; "village": on each village's loudspeakers.
    scope: Mapped[str] = mapped_column(String(16))
    cadence: Mapped[dict[str, Any]] = mapped_column(JSON)
    min_duration_ms: Mapped[int] = mapped_column(Integer)
    max_duration_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Device(Base):
    """A playout PC at the station or in a village; authenticates with a hashed token."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    village_id: Mapped[int | None] = mapped_column(
        ForeignKey("villages.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_seen_at: Mapped[datetime | None]
    last_playlist_at: Mapped[datetime | None]
    last_played_at: Mapped[datetime | None]
    agent_version: Mapped[str | None] = mapped_column(String(40))
    free_disk_bytes: Mapped[int | None] = mapped_column(BigInteger)
