"""A station's own pronunciation dictionary for text-to-speech."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base


class StationAbbreviation(Base):
    """An abbreviation and how it is read aloud, overriding the built-in dictionary."""

    __tablename__ = "station_abbreviations"
    __table_args__ = (UniqueConstraint("station_id", "abbreviation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    abbreviation: Mapped[str] = mapped_column(String(40))
    expansion: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
