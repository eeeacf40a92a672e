"""API shapes for playlists, as-run batches and emergencies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

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
    live_id: DbId | None = Field(default=None, description="a live session the device carried")
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
    segment_id: DbId | None = Field(
        default=None, description="an approved segment with audio; or give text instead"
    )
    text: str | None = Field(
        default=None,
        max_length=20_000,
        description="the message, read aloud (at most three minutes) and played at once",
    )
    repeat: Annotated[int, Field(ge=1, le=5)] | None = Field(
        default=None,
        description="with text: how many times the message plays (1 to 5, default 2)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> EmergencyCreate:
        if (self.segment_id is None) == (self.text is None):
            raise ValueError("give either segment_id or text, not both nor neither")
        if self.segment_id is not None and self.repeat is not None:
            raise ValueError("repeat goes with text: a segment plays as it is")
        return self


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
    repeat: int = Field(default=1, description="how many times the audio says the message")


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


class LiveCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    station_id: DbId
    village_ids: Annotated[list[DbId], Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="omit for the whole station: its PC and every village"
    )
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    priority: Literal["normal", "emergency"] = Field(
        description="emergency: pre-empts everything; normal: the schedule, not an emergency"
    )


class LiveSource(BaseModel):
    """How a source client feeds the session (Icecast's protocol): shown once."""

    url: str = Field(description="the hub, e.g. http://host:8001")
    mount: str
    username: str
    password: str | None = Field(description="only in the answer that opened the session")


class LiveOut(BaseModel):
    id: int
    station_id: DbId
    village_ids: list[DbId] | None
    title: str
    priority: str
    source: LiveSource
    websocket_url: str = Field(
        description="the console's feed: MediaRecorder chunks (WebM or Ogg Opus) as binary "
        "frames; the console session's cookie and ?csrf_token= are required"
    )
    listen_url: str = Field(description="the mount devices play (with their token)")
    created_at: datetime
    source_seen_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    recording_sha256: str | None = None
    recording_ms: int | None = None
    recording_loudness_lufs: float | None = Field(
        default=None, description="the kept recording's integrated loudness (normalised)"
    )
    recording_note: str | None = None
