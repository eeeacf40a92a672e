"""Issued copies of the compliance report: numbered, signed, kept as they were issued."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base


class IssuedReport(Base):
    """One numbered copy of a report (a line of the station's document register).

    A number is given once per station and register year: the unique key is what keeps
    two concurrent issues from getting the same one.
    """

    __tablename__ = "issued_reports"
    __table_args__ = (UniqueConstraint("station_id", "register_year", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    # Decree 30: numbers run from 01 each calendar year (the local year of issue).
    register_year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    document_number: Mapped[str] = mapped_column(String(80))
    # The period the report covers: a year, or one month of it ("2024-03").
    year: Mapped[int] = mapped_column(Integer)
    month: Mapped[str | None] = mapped_column(String(7))
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    issued_by: Mapped[str] = mapped_column(String(80))
    issued_at: Mapped[datetime] = mapped_column(default=clock.now)
    # The report as issued (the JSON format), and the sha256 of that JSON.
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
