"""API shapes for stations, villages and programmes."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any
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

    @property
    def window_ms(self) -> list[int]:
        return [self.min_duration_ms, self.max_duration_ms]


class ProgrammeRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cadence: dict[str, Any] | None = None
    min_duration_ms: int | None = Field(default=None, gt=0, le=24 * 3600 * 1000)
    max_duration_ms: int | None = Field(default=None, gt=0, le=24 * 3600 * 1000)


class VillageCadence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cadence: dict[str, Any] | None
