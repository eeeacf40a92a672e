"""API shapes for broadcasts, rundowns, yearly planning and the scheduler's warnings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from app.db import DbId
from app.schedule.models import BroadcastStatus


def _unique(ids: list[int]) -> list[int]:
    if len(set(ids)) != len(ids):
        raise ValueError("a segment can appear only once in a rundown")
    return ids


class BroadcastCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programme: Annotated[str, Field(min_length=1, max_length=40)]
    station_id: DbId
    starts_at: AwareDatetime = Field(description="ISO 8601 with offset")
    village_id: DbId | None = None


class BroadcastMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime
    version: DbId | None = None


class MasterOut(BaseModel):
    """A broadcast's rendered master file, measured as a player decodes it."""

    sha256: str
    duration_ms: int
    loudness_lufs: float | None
    true_peak_dbtp: float | None
    loudness_range_lu: float | None
    warnings: list[str] = Field(description="how it misses the playout standard, if it does")


class BroadcastOut(BaseModel):
    id: int
    station_id: DbId
    programme: str
    village_id: DbId | None
    starts_at: datetime = Field(description="UTC")
    starts_at_local: datetime = Field(description="the same instant in the station's time zone")
    local_month: str
    status: BroadcastStatus
    priority: str
    network: str = Field(
        description="the station's network kind on the broadcast's day: who carries it"
    )
    master_sha256: str | None
    master_duration_ms: int | None
    master: MasterOut | None = None
    assembled_at: datetime | None
    version: DbId


class RundownSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_ids: Annotated[list[DbId], Field(max_length=200), AfterValidator(_unique)]


class RundownItemOut(BaseModel):
    position: int
    kind: str  # "intro", "segment", "outro"
    segment_id: DbId | None
    title: str
    duration_ms: int | None
    audio_sha256: str | None


class CueOut(BaseModel):
    label: str
    offset_ms: int
    duration_ms: int


class RundownOut(BaseModel):
    broadcast_id: DbId
    programme: str
    items: list[RundownItemOut]
    gap_ms: int
    total_ms: int
    window_ms: tuple[int, int]
    compliant: bool
    problem: str | None
    master_sha256: str | None
    master_duration_ms: int | None
    master: MasterOut | None = None
    cue_sheet: list[CueOut] | None


class PlanOut(BaseModel):
    station_id: DbId
    year: int
    created: int
    existing: int
    cancelled: int


class WarningOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    station_id: DbId | None
    broadcast_id: DbId | None
    kind: str
    message: str
    created_at: datetime
