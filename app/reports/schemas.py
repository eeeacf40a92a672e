"""API shapes of the compliance report (the JSON format; the other formats render it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.db import DbId
from app.stations.document import MAX_NUMBER

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
    # ip station: the column aired, but not on every village in service (or not to the
    # window on one): the villages' own results say which and how
    "villages-missing",
]
BroadcastState = Literal["aired", "interrupted", "missed", "pending"]
# How a station's villages hear the commune's programmes (see DESIGN.md "Loudspeaker networks").
Network = Literal["ip", "fm"]


class StationRef(BaseModel):
    id: int
    name: str
    timezone: str
    network: Network = Field(description="the station's network kind now")


class BroadcastLine(BaseModel):
    """One broadcast counted in a month, and what the as-run log says of it."""

    id: int
    starts_at: datetime = Field(description="scheduled start, in the station's time zone")
    state: BroadcastState
    aired_at: datetime | None = Field(description="start of its longest played event, local")
    aired_ms: int


class VillageReach(BaseModel):
    """One village's cluster and the CCHC column in a month (ip stations)."""

    id: DbId
    name: str
    aired: int = Field(description="broadcasts of the month its cluster played to the end")
    aired_ms: int = Field(description="played duration of those broadcasts on its cluster")
    result: MonthResult = Field(description="the month's rule applied to this village alone")


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
    network: Network = Field(
        description="the kind the month's broadcasts were published under: in `ip` every "
        "village in service must air the column; in `fm` the station PC's airing counts"
    )
    villages_in_service: list[VillageReach] = Field(
        description="ip: villages with an active cluster device created before a broadcast "
        "of the month began; empty in fm"
    )
    villages_aired: list[VillageReach] = Field(description="of those, the ones that aired it")
    villages_missing: list[VillageReach] = Field(description="of those, the ones that did not")
    reach: str | None = Field(
        description='ip: "aired in 7 of 8 villages; not in Thôn 3"; null in fm',
        examples=["aired in 7 of 8 villages; not in Thôn 3"],
    )


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


class IssueRef(BaseModel):
    """The issued (numbered, signed) copy a report is, when it is one."""

    id: int
    number: int
    register_year: int = Field(description="the year of the register the number is from")
    issued_at: datetime = Field(description="station local time")
    issued_by: str


class DocumentInfo(BaseModel):
    """The report as an administrative document: its number, signer and recipients."""

    number: str = Field(
        description='"5/BC-UBND" on an issued copy; the pattern with "…" for the number '
        'otherwise ("…/BC-UBND"): GET never allocates a number'
    )
    number_pattern: str
    signer_name: str | None
    signer_title: str = Field(description='e.g. "Chủ tịch", "Phó Chủ tịch"')
    signs_for: str | None = Field(
        description='a deputy signs for the head (Decree 30 "KT."): "Chủ tịch"; null otherwise'
    )
    recipients: list[str] = Field(description="Nơi nhận, one line each")
    issued: IssueRef | None = None


class RelayVillage(BaseModel):
    """A village's cluster in an ip station: how much of a relay's month it carried."""

    id: int
    name: str
    relayed: int
    relayed_ms: int
    dropouts: int


class RelayRow(BaseModel):
    """A relay programme's month: slots planned and relayed, minutes heard and planned."""

    month: str
    programme: str
    programme_name: str
    planned: int = Field(description="slots of the month (cancelled ones left out)")
    due: int = Field(description="slots whose window is over")
    relayed: int = Field(
        description="slots heard for at least LOAXA_RELAY_MIN_PERCENT (90) of the window"
    )
    planned_ms: int
    relayed_ms: int = Field(description="what the devices heard, the best device a slot")
    dropouts: int
    dropout_ms: int
    not_relayed: list[str] = Field(
        default_factory=list, description="why slots were not relayed, in words"
    )
    villages: list[RelayVillage] = Field(
        default_factory=list, description="ip stations: each village's cluster"
    )


class LiveRow(BaseModel):
    """A live session of the period ("Phát trực tiếp"): how long, and which villages carried it."""

    id: int
    title: str
    kind: str = Field(default="Phát trực tiếp")
    priority: str
    started_at: datetime = Field(description="station local time")
    ended_at: datetime | None
    duration_ms: int = Field(description="the recording's length, else from start to end")
    villages: list[str] = Field(
        description="the villages whose clusters reported playing it (the station's PC: "
        '"Máy ở đài")'
    )
    recorded: bool = Field(description="whether the recording is kept as audio")


class ComplianceReport(BaseModel):
    """Planned versus aired for one station over a local year or month."""

    station: StationRef
    document: DocumentInfo
    year: int
    month: str | None = Field(description='"2024-03" when one month was asked for')
    generated_at: datetime = Field(description="when the report was made, station local time")
    months: list[MonthRow]
    villages: list[VillageRow]
    topics: dict[str, TopicCount]
    summary: Summary
    relays: list[RelayRow] = Field(
        default_factory=list, description="relay programmes, month by month"
    )
    live: list[LiveRow] = Field(
        default_factory=list, description='live sessions ("Phát trực tiếp") of the period'
    )


class IssueRequest(BaseModel):
    """POST /reports/compliance/issue: which report, and the number if it is given."""

    model_config = ConfigDict(extra="forbid")

    station_id: DbId
    year: int = Field(ge=2000, le=2100)
    month: (
        Annotated[int, Field(ge=1, le=12)]
        | Annotated[str, StringConstraints(max_length=7)]
        | None
    ) = Field(default=None, description='1 to 12, or "2024-03"')
    number: int | None = Field(
        default=None,
        ge=1,
        le=MAX_NUMBER,
        description="the number in the register; omitted: the next of the year's register",
    )


class IssuedReportOut(BaseModel):
    """A line of the station's register of issued reports."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    station_id: int
    year: int
    month: str | None
    register_year: int
    number: int
    document_number: str = Field(examples=["05/BC-UBND"])
    issued_by: str
    issued_at: datetime
    sha256: str = Field(description="sha256 of the issued report's JSON (sorted keys, UTF-8)")
