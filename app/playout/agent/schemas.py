"""The server's playlist and emergency bodies as the agent reads them (DESIGN.md "Contract").

Plain data, no I/O: the decision rules (`decide.py`) take these without the HTTP client.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

log = logging.getLogger("loaxa.agent")

SHA256_PATTERN = r"^[0-9a-f]{64}$"


class PlaylistItem(BaseModel):
    """One item of a device's day playlist, as the server sends it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_key: str = Field(min_length=1)
    broadcast_id: int | None = None
    programme: str | None = None
    title: str = ""
    priority: str = "normal"
    rank: int | None = None
    # Event keys of overlapping items that win over this one (older servers send none).
    yields_to: tuple[str, ...] = ()
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    duration_ms: int = Field(gt=0)
    # "file": the stored audio (sha256, audio_url); "stream": relay stream_url for the
    # window, the station's fallback (if any) filling a dropout.
    kind: Literal["file", "stream"] = "file"
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    audio_url: str | None = None
    stream_url: str | None = None
    fallback_sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    fallback_audio_url: str | None = None
    fallback_duration_ms: int | None = None

    @model_validator(mode="after")
    def _source(self) -> PlaylistItem:
        if self.kind == "file" and self.sha256 is None:
            raise ValueError("a file item needs its sha256")
        if self.kind == "stream" and not self.stream_url:
            raise ValueError("a stream item needs its stream_url")
        return self

    @model_validator(mode="after")
    def _slot_end(self) -> PlaylistItem:
        if self.ends_at is None:
            object.__setattr__(
                self, "ends_at", self.starts_at + timedelta(milliseconds=self.duration_ms)
            )
        return self

    @property
    def end(self) -> datetime:
        """When the item's slot ends."""
        assert self.ends_at is not None
        return self.ends_at


class EmergencyNotice(BaseModel):
    """An active emergency announcement in the device's scope, or (``kind: "live"``) its
    station's open live session: a stream to play until it leaves the list."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["emergency", "live"] = "emergency"
    id: int
    title: str = ""
    segment_id: int | None = None
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    audio_url: str | None = None
    duration_ms: int = Field(default=0, ge=0)
    created_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    priority: Literal["normal", "emergency"] = "emergency"
    stream_url: str | None = None

    @model_validator(mode="after")
    def _source(self) -> EmergencyNotice:
        if self.kind == "emergency" and (self.sha256 is None or self.duration_ms <= 0):
            raise ValueError("an emergency needs its sha256 and duration_ms")
        if self.kind == "live" and not self.stream_url:
            raise ValueError("a live session needs its stream_url")
        return self

    @property
    def is_live(self) -> bool:
        return self.kind == "live"


def parse_items(body: dict[str, Any]) -> list[PlaylistItem]:
    """The valid items of a playlist body; an invalid item is logged and left out."""
    items = []
    for raw in body.get("items") or []:
        try:
            items.append(PlaylistItem.model_validate(raw))
        except ValidationError as exc:
            log.warning("ignoring an invalid playlist item %r: %s", raw, exc)
    return items


def parse_emergencies(body: Any) -> list[EmergencyNotice]:
    """The valid emergencies of an emergencies body; an invalid one is logged and left out."""
    notices = []
    for raw in body if isinstance(body, list) else []:
        try:
            notices.append(EmergencyNotice.model_validate(raw))
        except ValidationError as exc:
            log.warning("ignoring an invalid emergency %r: %s", raw, exc)
    return notices
