"""Stations (communes), their villages and programmes."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, ForeignKey, Integer, String, UniqueConstraint, or_
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import clock
from app.db import Base


class Network(enum.StrEnum):
    """How a station's villages hear it (DESIGN.md "Loudspeaker networks").

    ``ip``: every village cluster is a networked device that plays the commune's programmes
    as well as its own village's. ``fm``: the station's PC feeds a transmitter the village
    receivers pick up; village devices, if any, play only village slots.
    """

    ip = "ip"
    fm = "fm"


RELAY = "relay"
# A station's own programme for emergencies from text or a recording (app.playout.spoken):
# never planned, filled, reported or in the podcast.
EMERGENCY_SOURCE = "emergency"


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
    # What the loudspeakers play while a relayed stream is gone (an approved segment, such
    # as the station's ident); None: silence.
    relay_fallback_segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("segments.id", ondelete="SET NULL", use_alter=True)
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # The kinds of network it has had, oldest first: read through network.network_on.
    networks: Mapped[list[StationNetwork]] = relationship(
        order_by="StationNetwork.effective_from",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class StationNetwork(Base):
    """A station's network kind from a local day on (until the next row's day).

    A change is a new row from the next local day, so no device's playlist changes in the
    middle of its day; the station's first row starts at date.min.
    """

    __tablename__ = "station_networks"

    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True
    )
    effective_from: Mapped[date] = mapped_column(primary_key=True)
    network: Mapped[str] = mapped_column(String(8))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
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
    # Where its airtime comes from: None, the rundown of segments; "relay", the stream at
    # source_url (national or provincial radio), pulled through the station's hub.
    source_kind: Mapped[str | None] = mapped_column(String(16))
    source_url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    @property
    def is_emergency(self) -> bool:
        """Whether this is the station's programme for spoken emergencies (never planned)."""
        return self.source_kind == EMERGENCY_SOURCE

    @property
    def is_relay(self) -> bool:
        """Whether this programme relays a stream (no rundown, no assembly)."""
        return self.source_kind == RELAY

    def cadence_for(self, village: Village | None) -> dict[str, Any]:
        """The cadence this programme follows: a village programme on a village that has
        its own slots follows those; everything else the programme's own."""
        if self.scope == "village" and village is not None and village.cadence:
            return village.cadence
        return self.cadence


def not_emergency_programme() -> ColumnElement[bool]:
    """SQL: the programme is not a station's emergency programme (app.playout.spoken)."""
    return or_(Programme.source_kind.is_(None), Programme.source_kind != EMERGENCY_SOURCE)
