"""API shapes for text-to-speech: previews, drafted segment audio, station dictionaries."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.db import DbId
from app.segments.schemas import SegmentOut

Abbreviation = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^\S+( \S+)*$")
]
Expansion = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class PreviewOut(BaseModel):
    text: str


class TTSRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal["auto", "gtts", "espeak"] = "auto"
    version: DbId | None = None


class SegmentTTSOut(SegmentOut):
    tts_engine: str | None
    tts_voice: str | None
    cached: bool
    warnings: list[str]


class Dictionary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: dict[Abbreviation, Expansion] = Field(max_length=2000)


class DictionaryOut(BaseModel):
    station: dict[str, str]
    builtin_count: int
