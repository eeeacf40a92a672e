"""API shapes for stations, villages and programmes."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.db import DbId
from app.stations import document
from app.stations.models import Network
from app.text import Name, nfc


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_zone)]
Phone = Annotated[str, StringConstraints(max_length=40, pattern=r"^[0-9 .+()-]{3,40}$")]


class StationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    timezone: TimeZoneName | None = Field(
        default=None, description="IANA time zone; LOAXA_TIMEZONE (Asia/Ho_Chi_Minh) when omitted"
    )
    hotline: Phone | None = None
    network: Network = Field(
        default=Network.ip,
        description="ip: every village cluster is a networked device that also plays the "
        "commune's programmes; fm: the station's PC feeds a transmitter",
    )


def _one_line(value: str) -> str:
    """One line of Vietnamese text: NFC, trimmed, not empty, no line breaks."""
    value = nfc(value)
    if not value:
        raise ValueError("must not be empty")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("must be one line, without control characters")
    return value


def _at_most(limit: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(
                f"at most {limit} characters (the report's layout holds no more), "
                f"got {len(value)}"
            )
        return value

    return check


# The report's settings (app.stations.document): generous raw bounds first (before NFC),
# then the layout's limits on the normalised text.
NumberPattern = Annotated[
    str,
    StringConstraints(max_length=4 * document.MAX_PATTERN),
    AfterValidator(_one_line),
    AfterValidator(_at_most(document.MAX_PATTERN)),
    AfterValidator(document.check_number_pattern),
]
SignerName = Annotated[
    str,
    StringConstraints(max_length=4 * document.MAX_SIGNER_NAME),
    AfterValidator(_one_line),
    AfterValidator(_at_most(document.MAX_SIGNER_NAME)),
]
SignerTitle = Annotated[
    str,
    StringConstraints(max_length=4 * document.MAX_TITLE),
    AfterValidator(_one_line),
    AfterValidator(_at_most(document.MAX_TITLE)),
]
Recipient = Annotated[
    str,
    StringConstraints(max_length=4 * document.MAX_RECIPIENT),
    AfterValidator(_one_line),
    AfterValidator(_at_most(document.MAX_RECIPIENT)),
]


class StationUpdate(BaseModel):
    """PATCH /stations/{id}: the fields given change, the others stay.

    The time zone is not here: it decides which local day and month every broadcast of the
    station belongs to, so changing it would rewrite the plan, not a detail.
    """

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    hotline: Phone | None = Field(default=None, description="null removes it")
    network: Network | None = Field(
        default=None, description="applies from the station's next local day on"
    )
    # The compliance report as the station signs it; null restores the default.
    report_number_pattern: NumberPattern | None = Field(
        default=None,
        description='the register number pattern, with {n} once (and {year}), e.g. "{n}/BC-UBND"',
    )
    report_signer_name: SignerName | None = None
    report_signer_title: SignerTitle | None = Field(
        default=None,
        description='"Chủ tịch", or "Phó Chủ tịch" (a deputy signs "KT. CHỦ TỊCH")',
    )
    report_recipients: (
        Annotated[list[Recipient], Field(min_length=1, max_length=document.MAX_RECIPIENTS)]
        | None
    ) = Field(default=None, description="Nơi nhận, one line each")
    relay_fallback_segment_id: DbId | None = Field(
        default=None,
        description="an approved segment with audio (such as the station's ident) that the "
        "loudspeakers play while a relayed stream is gone; null: silence",
    )

    @model_validator(mode="after")
    def _no_null_name_or_network(self) -> StationUpdate:
        for field in ("name", "network"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class PendingNetwork(BaseModel):
    network: Network
    effective_from: date = Field(description="the station's local day it applies from")


class StationOut(BaseModel):
    id: int
    name: str
    timezone: str
    hotline: str | None
    network: Network = Field(description="the network kind in force today")
    pending_network: PendingNetwork | None = Field(
        default=None, description="a change asked for, from a later day"
    )
    created_at: datetime
    report_number_pattern: str | None = Field(
        default=None, description=f"null: {document.DEFAULT_NUMBER_PATTERN}"
    )
    report_signer_name: str | None = None
    report_signer_title: str | None = Field(
        default=None, description=f"null: {document.DEFAULT_SIGNER_TITLE}"
    )
    report_recipients: list[str] | None = Field(
        default=None, description="Nơi nhận; null: the usual recipients"
    )
    relay_fallback_segment_id: int | None = Field(
        default=None, description="what plays while a relayed stream is gone; null: silence"
    )


class VillageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    cadence: dict[str, Any] | None = Field(
        default=None, description="overrides the village programme's weekly slot"
    )


class VillageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    station_id: DbId
    name: str
    cadence: dict[str, Any] | None


DAY_MS = 24 * 3600 * 1000
ProgrammeCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$"),
]


def _stream_url(value: str) -> str:
    """An http(s) URL with a host: the only streams the hub and the probe fetch."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL, not {parts.scheme or value!r}")
    if not parts.hostname:
        raise ValueError("must name a host, e.g. http://radio.example.vn:8000/vov1")
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError as exc:
        raise ValueError(f"has a bad port: {exc}") from exc
    return value


StreamUrl = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_stream_url)]


class ProgrammeSource(BaseModel):
    """Where a programme's airtime comes from: a stream relayed through the hub."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["relay"] = Field(description="relay: the stream at url, at the slot's time")
    url: StreamUrl = Field(
        description="Icecast or Shoutcast (MP3, AAC, Ogg) or HLS (.m3u8), http(s) only"
    )


class ProgrammeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    station_id: DbId
    code: str
    name: str
    scope: str
    cadence: dict[str, Any]
    min_duration_ms: int
    max_duration_ms: int
    source: ProgrammeSource | None = Field(
        default=None, description="null: a rundown of segments; relay: a stream"
    )

    @classmethod
    def of(cls, programme: Any) -> ProgrammeOut:
        """The programme as the API shows it."""
        out = cls.model_validate(programme)
        if programme.source_kind is not None:
            out.source = ProgrammeSource(kind=programme.source_kind, url=programme.source_url)
        return out

    @property
    def window_ms(self) -> list[int]:
        return [self.min_duration_ms, self.max_duration_ms]


class ProgrammeCreate(BaseModel):
    """POST /stations/{id}/programmes: a new programme, its rule as data."""

    model_config = ConfigDict(extra="forbid")

    code: ProgrammeCode = Field(description='lower-case letters, digits and "-", e.g. "vov1"')
    name: Name
    scope: Literal["station", "village"]
    cadence: dict[str, Any] = Field(
        description='e.g. {"kind": "daily", "time": "06:00"} or a weekly or monthly cadence'
    )
    min_duration_ms: int = Field(gt=0, le=DAY_MS)
    max_duration_ms: int = Field(gt=0, le=DAY_MS)
    source: ProgrammeSource | None = Field(
        default=None, description="a relay of a stream; omit for a programme of segments"
    )

    @model_validator(mode="after")
    def _window(self) -> ProgrammeCreate:
        if self.min_duration_ms > self.max_duration_ms:
            raise ValueError("min_duration_ms must not be more than max_duration_ms")
        if self.source is not None and self.min_duration_ms != self.max_duration_ms:
            raise ValueError(
                "max_duration_ms: a relay's window is exact: min_duration_ms and "
                "max_duration_ms must be equal"
            )
        return self


class ProgrammeRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cadence: dict[str, Any] | None = None
    min_duration_ms: int | None = Field(default=None, gt=0, le=DAY_MS)
    max_duration_ms: int | None = Field(default=None, gt=0, le=DAY_MS)
    name: Name | None = None
    source: ProgrammeSource | None = Field(
        default=None, description="a relay's new stream (a relay stays a relay)"
    )


class VillageCadence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cadence: dict[str, Any] | None
