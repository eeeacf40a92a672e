"""API shapes for playlists, as-run batches and emergencies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.db import DbId
from app.http import Instant

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
EventId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@/+=-]+$")
]


class PlaylistItem(BaseModel):
    event_key: str = Field(description='stable key of the item: "b<broadcast id>"')
    broadcast_id: DbId
    programme: str
    title: str
    priority: str
    village_id: int | None = Field(description="null: the commune's programme")
    rank: int = Field(description="precedence among the day's items: 1 goes first")
    yields_to: list[str] = Field(
        description="event keys of overlapping items that win over this one: it does not play"
    )
    supersedes: list[str] = Field(description="event keys of overlapping items this one beats")
    starts_at: datetime = Field(description="UTC")
    starts_at_local: datetime = Field(description="in the station's time zone")
    ends_at: datetime = Field(description="UTC: starts_at + duration_ms")
    duration_ms: int
    kind: Literal["file", "stream"] = Field(
        description="file: play the stored audio; stream: relay stream_url for the window"
    )
    sha256: str | None = Field(description="null for a stream")
    audio_url: str | None = Field(description="null for a stream")
    stream_url: str | None = Field(
        description="a stream's mount on the station's hub (listen with the device token as "
        "the password of HTTP basic authentication); null for a file"
    )


class PlaylistOut(BaseModel):
    """A device's playlist for one local day (documentation of the JSON the endpoint sends)."""

    date: str
    device_id: DbId
    station_id: DbId
    village_id: DbId | None
    timezone: str
    items: list[PlaylistItem]


class Dropouts(BaseModel):
    """How often a relayed stream was gone during its window, and for how long in all."""

    model_config = ConfigDict(extra="ignore")

    count: int = Field(ge=0, le=100_000)
    total_ms: int = Field(ge=0, le=24 * 3600 * 1000)


class AsRunEventIn(BaseModel):
    """One event an agent reports; unknown fields are ignored so newer agents keep working.

    A relayed stream's event has no file (sha256 null) and says how long the stream was
    heard (relayed_ms) and how it dropped out.
    """

    model_config = ConfigDict(extra="ignore")

    event_id: EventId
    broadcast_id: DbId | None = None
    emergency_id: DbId | None = None
    sha256: Sha256 | None
    started_at: Instant
    ended_at: Instant
    status: Literal["played", "interrupted", "failed"]
    relayed_ms: int | None = Field(default=None, ge=0, le=24 * 3600 * 1000)
    dropouts: Dropouts | None = None
    note: Annotated[str, StringConstraints(max_length=300)] | None = Field(
        default=None, description="why it failed or was cut short, in words"
    )


class AsRunRejected(BaseModel):
    event_id: str | None
    reason: str


class AsRunResult(BaseModel):
    accepted: list[str]
    duplicates: list[str]
    rejected: list[AsRunRejected]


class EmergencyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    station_id: DbId
    village_ids: Annotated[list[DbId], Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="omit for the whole station: its PC and every village"
    )
    segment_id: DbId


class EmergencyOut(BaseModel):
    id: int
    station_id: DbId
    village_ids: list[DbId] | None
    segment_id: DbId
    title: str
    sha256: str
    audio_url: str
    duration_ms: int
    created_at: datetime
    expires_at: datetime
    cancelled_at: datetime | None = None


class DeliveryOut(BaseModel):
    """How an emergency reached one device in its scope."""

    device_id: DbId
    device_name: str
    village_id: DbId | None
    picked_up_at: datetime | None = Field(
        description="when the device's poll first returned the emergency; null: not yet"
    )
    started_at: datetime | None = Field(
        description="when the device reported starting it (as-run); null: not yet"
    )


class EmergencyDetail(EmergencyOut):
    deliveries: list[DeliveryOut] = Field(
        description="every device in scope (and any that picked it up), in id order"
    )
