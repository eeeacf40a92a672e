"""Stations (communes), their villages and programmes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
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
    # The compliance report as the station signs it (app.stations.document); None: the
    # defaults there ("{n}/BC-UBND", signed by the Chủ tịch, the usual recipients).
    report_number_pattern: Mapped[str | None] = mapped_column(String(60))
    report_signer_name: Mapped[str | None] = mapped_column(String(100))
    report_signer_title: Mapped[str | None] = mapped_column(String(60))
    report_recipients: Mapped[list[str] | None] = mapped_column(JSON)
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

