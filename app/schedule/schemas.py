"""API shapes for broadcasts, rundowns, yearly planning and the scheduler's warnings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.db import DbId
from app.http import Instant
from app.schedule.models import BroadcastStatus


def _unique(ids: list[int]) -> list[int]:
    if len(set(ids)) != len(ids):
        raise ValueError("a segment can appear only once in a rundown")
    return ids


class BroadcastCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programme: Annotated[str, Field(min_length=1, max_length=40)]
    station_id: DbId
    starts_at: Instant = Field(description="ISO 8601 with offset, in the years 2000 to 2100")
    village_id: DbId | None = None


class BroadcastMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: Instant
    version: DbId | None = None


class MasterOut(BaseModel):
    """A broadcast's rendered master file, measured as a player decodes it."""

    sha256: str
    duration_ms: int
    loudness_lufs: float | None
    true_peak_dbtp: float | None
    loudness_range_lu: float | None
    warnings: list[str] = Field(description="how it misses the playout standard, if it does")
    listen_url: str | None = Field(
        default=None,
        description="a light copy for people to listen to (AAC in MP4); null until it is "
        "made. The playout agents keep the full file",
    )


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
    confirm_aired: bool = Field(
        default=False,
        description="place segments that already aired in another broadcast (else 409)",
    )


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
    year: int | None
    months: tuple[str, str] = Field(description="the local months planned, first and last")
    created: int
    existing: int
    cancelled: int
    moved: int = Field(description="untouched future broadcasts moved to their new slot")


class WarningItemOut(BaseModel):
    """One thing a warning group is about: a broadcast, or the month itself."""

    key: str
    broadcast_id: int | None = None
    starts_at: datetime | None = None
    village_id: int | None = None
    village: str | None = None
    detail: str | None = None
    stage: str | None = None


class VillageCountOut(BaseModel):
    village_id: int | None = Field(description="None: the station's own broadcasts")
    village: str | None
    count: int


class WarningOut(BaseModel):
    """A warning group (kind, station, month) with what it is about, or a single finding."""

    id: int
    station_id: DbId | None
    broadcast_id: DbId | None = Field(None, description="only for a single-broadcast finding")
    kind: str
    month: str | None = None
    stage: str | None = Field(None, description='"T-7" or "T-1": how close it is')
    count: int = Field(description="items now; 0 once resolved")
    items: list[WarningItemOut] = []
    by_village: list[VillageCountOut] = []
    message: str
    created_at: datetime
    updated_at: datetime | None = None
    resolved_at: datetime | None = None
    acked_at: datetime | None = None
    acked_by: str | None = None
    acked_count: int | None = None
    acknowledged: bool = Field(False, description="acknowledged, and not grown since")


class WarningsPage(BaseModel):
    items: list[WarningOut]
    total: int
    limit: int
    offset: int
    scheduler_running: bool = Field(description="False: no scheduler seen for 30 minutes")


class SchedulerJobOut(BaseModel):
    job: str
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_outcome: str | None = Field(description='"ok" or "failed"')
    last_detail: str | None = Field(description="what it did; only for an admin of no station")
    runs: int
    next_run_at: datetime | None


class SchedulerProcessOut(BaseModel):
    holder: str = Field(description="host:pid")
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None
    running: bool


class SchedulerOut(BaseModel):
    running: bool = Field(description="a scheduler process was seen in the last 3 minutes")
    last_seen_at: datetime | None
    down_since: datetime | None = Field(
        description="set when no scheduler was seen for 30 minutes (or ever: then null "
        "with running false)"
    )
    processes: list[SchedulerProcessOut] = Field(
        description="the scheduler processes (host:pid); only for an admin of no station"
    )
    jobs: list[SchedulerJobOut]
