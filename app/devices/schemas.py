"""API shapes for playout devices."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.db import DbId
from app.text import Name


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    station_id: DbId
    village_id: DbId | None = None


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    station_id: DbId
    village_id: DbId | None
    is_active: bool
    created_at: datetime
    last_seen_at: datetime | None
    last_playlist_at: datetime | None
    last_played_at: datetime | None
    agent_version: str | None
    free_disk_bytes: int | None
    online: bool = Field(default=False, description="seen within the last 5 minutes")


class DeviceCreated(DeviceOut):
    token: str = Field(description="shown once; only its hash is kept")
