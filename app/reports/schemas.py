"""API shapes of the compliance report (the JSON format; the other formats render it)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.db import DbId

# Why a month is (not) compliant; each has a Vietnamese label in the rendered formats.
MonthResult = Literal[
    "compliant",  # as many airings as the cadence asks (one), each inside the window
    "not-aired",  # the month is over (or the broadcast is past) and nothing aired
    "interrupted",  # nothing aired to the end, but it went on air and was cut
    "too-short",
    "too-long",
    "aired-too-often",
    "too-few",  # a cadence of several a month, fewer aired
    "pending",  # the month is not over and nothing has aired yet
]
BroadcastState = Literal["aired", "interrupted", "missed", "pending"]


class StationRef(BaseModel):
    id: int
    name: str
    timezone: str


class BroadcastLine(BaseModel):
    """One broadcast counted in a month, and what the as-run log says of it."""

    id: int
    starts_at: datetime = Field(description="scheduled start, in the station's time zone")
    state: BroadcastState
    aired_at: datetime | None = Field(description="start of its longest played event, local")
    aired_ms: int


class MonthRow(BaseModel):
    """The CCHC column in one local month."""

    month: str = Field(examples=["2024-03"])
    programme: str
    planned: int = Field(description="non-cancelled broadcasts that month")
    aired: int = Field(description="broadcasts a station device reported played to the end")
    aired_ms: int = Field(description="played duration of the aired broadcasts")
    compliant: bool = Field(
        description="exactly `expected` airings (one), each with its duration inside window_ms"
    )
    interrupted: int = Field(description="broadcasts with interrupted events and none played")
    missed: int = Field(description="status missed, or past their slot with nothing played")
    pending: int = Field(description="not yet due and not yet played")
    window_ms: tuple[int, int]
    expected: int = Field(description="airings the cadence asks for in a month")
    closed: bool = Field(description="the local month is over")
    in_scope: bool = Field(description="counted in the year summary")
    result: MonthResult
    broadcasts: list[BroadcastLine]


class VillageMonth(BaseModel):
    month: str
    planned: int
    aired: int
    interrupted: int
    missed: int
    pending: int


class VillageRow(BaseModel):
    """A village-programme's slots in one village against what its loudspeakers played."""

    village_id: DbId
    village: str
    programme: str
    planned: int
    due: int = Field(description="planned slots whose time has come (planned - pending)")
    aired: int
    interrupted: int
    missed: int
    pending: int
    aired_ms: int
    coverage_pct: float | None = Field(description="aired / due x 100; null when nothing is due")
    months: list[VillageMonth]


class TopicCount(BaseModel):
    label: str = Field(description="the plan's words for the topic")
    segments: int = Field(description="distinct segments of this topic that aired")
    airings: int = Field(description="times they aired (a segment in 3 villages counts 3)")


class Summary(BaseModel):
    programme: str
    programme_name: str
    window_ms: tuple[int, int]
    months_in_scope: int = Field(description="months that are over, or already have an airing")
    months_compliant: int
    compliance_pct: float | None
    planned: int
    aired: int
    interrupted: int
    missed: int
    pending: int
    cchc_airtime_ms: int
    cchc_airtime_minutes: float
    village_planned: int
    village_due: int
    village_aired: int
    village_coverage_pct: float | None
    segments_aired: int
    segment_airings: int


class ComplianceReport(BaseModel):
    """Planned versus aired for one station over a local year or month."""

    station: StationRef
    year: int
    month: str | None = Field(description='"2024-03" when one month was asked for')
    generated_at: datetime = Field(description="when the report was made, station local time")
    months: list[MonthRow]
    villages: list[VillageRow]
    topics: dict[str, TopicCount]
    summary: Summary
