"""Segments (tin bài): the items that make up broadcasts."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.db import Base
from app.text import fold


class SegmentStatus(enum.StrEnum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"


class Priority(enum.StrEnum):
    """Levels of Circular 39/2020/TT-BTTTT for smart commune radio."""

    normal = "normal"
    priority = "priority"
    emergency = "emergency"


class Topic(enum.StrEnum):
    """What a segment is about, after the plan's sections 2.2 to 2.4."""

    progress = "progress"  # tình hình, kết quả thực hiện CCHC
    discipline = "discipline"  # kỷ luật, kỷ cương hành chính
    commendation = "commendation"  # biểu dương điển hình
    criticism = "criticism"  # phê bình, rút kinh nghiệm
    negative_conduct = "negative-conduct"  # tiêu cực, nhũng nhiễu, phiền hà
    citizen_feedback = "citizen-feedback"  # phản ánh, kiến nghị của người dân
    policy = "policy"  # chủ trương, chính sách, pháp luật
    one_stop_desk = "one-stop-desk"  # Bộ phận tiếp nhận và trả kết quả
    procedures = "procedures"  # thủ tục hành chính
    disclosure = "disclosure"  # nội dung công khai với nhân dân
    indices = "indices"  # PAR INDEX, PAPI, SIPAS, PCI
    emergency = "emergency"  # thiên tai, dịch bệnh
    other = "other"


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_station_status_created", "station_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    programme_id: Mapped[int] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(32))
    script: Mapped[str | None] = mapped_column(Text)
    # Title and script folded for search ("Tìm"): written with them, see _fold_search below.
    search_text: Mapped[str] = mapped_column(Text, default="")
    target_month: Mapped[str | None] = mapped_column(String(7), index=True)
    priority: Mapped[str] = mapped_column(String(16), default=Priority.normal.value)
    status: Mapped[str] = mapped_column(String(16), default=SegmentStatus.draft.value)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    audio_id: Mapped[int | None] = mapped_column(
        ForeignKey("audio_assets.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    submitted_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]
    # Optimistic locking: every UPDATE checks and bumps it, so a stale write fails.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


@event.listens_for(Segment, "before_insert")
@event.listens_for(Segment, "before_update")
def _fold_search(_mapper: Any, _conn: Any, segment: Segment) -> None:
    """Every write of a segment keeps its search column in step with its title and script."""
    segment.search_text = fold(f"{segment.title or ''}\n{segment.script or ''}")


class SegmentVillage(Base):
    """The villages a segment is meant for (village loudspeaker slots)."""

    __tablename__ = "segment_villages"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    village_id: Mapped[int] = mapped_column(
        ForeignKey("villages.id", ondelete="CASCADE"), primary_key=True, index=True
    )
