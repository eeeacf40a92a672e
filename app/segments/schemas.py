"""API shapes for segments."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.db import DbId
from app.segments.models import Priority, SegmentStatus, Topic
from app.text import LongText, Name

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month(value: str) -> str:
    if not _MONTH.match(value):
        raise ValueError(f"month must be YYYY-MM with a month from 01 to 12: {value!r}")
    return value


Month = Annotated[str, StringConstraints(max_length=7), AfterValidator(_month)]
VillageIds = Annotated[list[DbId], Field(max_length=500)]


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Name
    programme: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    topic: Topic
    script: LongText | None = None
    target_month: Month | None = None
    village_ids: VillageIds = []
    priority: Priority = Priority.normal
    station_id: DbId | None = Field(
        default=None, description="defaults to the editor's station, or the only station"
    )


class SegmentUpdate(BaseModel):
    """Fields to change; `version` (or an If-Match header) guards against stale writes."""

    model_config = ConfigDict(extra="forbid")

    title: Name | None = None
    programme: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    topic: Topic | None = None
    script: LongText | None = None
    target_month: Month | None = None
    village_ids: VillageIds | None = None
    priority: Priority | None = None
    version: DbId | None = None


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[Name, StringConstraints(max_length=2000)]


class SegmentOut(BaseModel):
    id: int
    station_id: DbId
    programme: str
    title: str
    topic: Topic
    script: str | None
    target_month: str | None
    village_ids: list[DbId]
    priority: Priority
    status: SegmentStatus
    rejection_reason: str | None
    duration_ms: int | None
    loudness_lufs: float | None
    true_peak_dbtp: float | None
    loudness_range_lu: float | None
    audio_sha256: str | None
    audio_warnings: list[str] = Field(
        default=[], description="how the audio misses the playout standard, if it does"
    )
    created_by: str | None
    created_by_name: str | None = Field(
        default=None, description='the creator\'s "Họ và tên" (else login name)'
    )
    audio_id: DbId | None = None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    approved_at: datetime | None
    version: DbId


class AudioHistoryItem(BaseModel):
    """An audio a segment has had: the current one, or one that can be restored."""

    audio_id: DbId
    sha256: str
    duration_ms: int
    loudness_lufs: float
    origin: str = Field(description='"upload" or "tts"')
    tts_engine: str | None
    attached_at: datetime
    attached_by: str | None = Field(description="who attached it (full name, else login)")
    current: bool


class RestoreAudioBody(BaseModel):
    """Which earlier audio to make the segment's audio again."""

    model_config = ConfigDict(extra="forbid")
    audio_id: DbId
    version: DbId | None = None
