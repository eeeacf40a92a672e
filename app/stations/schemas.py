"""API shapes for stations, villages and programmes."""

from __future__ import annotations

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
from app.stations.models import Network
from app.text import Name


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
