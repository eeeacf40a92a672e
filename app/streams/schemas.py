"""API shapes of the hub's endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.stations.schemas import StreamUrl


class ProbeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: StreamUrl


class ProbeOut(BaseModel):
    ok: bool
    codec: str | None = Field(default=None, description='e.g. "mp3", "aac", "vorbis"')
    bitrate_kbps: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    hls: bool = Field(default=False, description="the URL is an HLS playlist")
    error: str | None = Field(default=None, description='why not, e.g. "timeout"')
    detail: str | None = Field(default=None, description="the error in words")
    bytes_read: int = 0


class RelayTodayOut(BaseModel):
    broadcast_id: int
    code: str
    name: str
    starts_at: datetime
    ends_at: datetime
    phase: str = Field(description="upcoming, on-air or over")
    receiving: bool | None = Field(description="on air: whether the hub receives its upstream")
    since: datetime | None
    relayed: bool | None = Field(description="over: heard for 90 % of the window")
    reason: str | None
    words: str = Field(description='e.g. "VOV1: mất tín hiệu từ 06:12"')
