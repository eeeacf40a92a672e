"""Text-to-speech: preview the read-aloud text, draft a segment's audio, the dictionary."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from app.accounts.deps import EditorUser, SessionDep, ViewerUser
from app.accounts.models import User
from app.audio.models import AudioAsset
from app.db import unit_of_work
from app.http import version_etag
from app.segments import service as segments
from app.segments.schemas import SegmentOut
from app.stations import service as stations
from app.tts import service
from app.tts.normalize import BUILTIN_ABBREVIATIONS

router = APIRouter(prefix="/api/v1", tags=["tts"])

Abbreviation = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^\S+( \S+)*$")
]
Expansion = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class PreviewOut(BaseModel):
    text: str


class TTSRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal["auto", "gtts", "espeak"] = "auto"
    version: int | None = None


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


@router.get("/tts/preview", response_model=PreviewOut)
def tts_preview(
    session: SessionDep,
    user: EditorUser,
    text: Annotated[str, Query(max_length=20_000)],
    station_id: int | None = None,
) -> PreviewOut:
    """The text as it will be read aloud, after normalisation (station dictionary included)."""
    sid = station_id if station_id is not None else user.station_id
    extra = {}
    if sid is not None:
        stations.get_station(session, sid, user=user)
        extra = service.station_dictionary(session, sid)
    return PreviewOut(text=service.preview(text, extra))


@router.post("/segments/{segment_id}/tts", response_model=SegmentTTSOut)
async def draft_tts(
    user: EditorUser, segment_id: int, body: TTSRequest, response: Response
) -> SegmentTTSOut:
    """Draft the segment's audio from its script (gTTS, or espeak-ng offline)."""
    _, warnings, cached = await run_in_threadpool(
        lambda: service.draft_segment_audio(
            segment_id=segment_id, user=user, engine=body.engine, expected_version=body.version
        )
    )
    out = await run_in_threadpool(_tts_out, segment_id, user, warnings, cached)
    response.headers["ETag"] = version_etag(out.version)
    return out


def _tts_out(segment_id: int, user: User, warnings: list[str], cached: bool) -> SegmentTTSOut:
    with unit_of_work(write=False) as session:
        segment = segments.get_segment(session, segment_id, user=user)
        out = segments.to_out(session, segment)
        asset = session.get(AudioAsset, segment.audio_id) if segment.audio_id else None
        return SegmentTTSOut(
            **out.model_dump(),
            tts_engine=asset.tts_engine if asset else None,
            tts_voice=asset.tts_voice if asset else None,
            cached=cached,
            warnings=warnings,
        )


@router.get("/stations/{station_id}/abbreviations", response_model=DictionaryOut)
def get_dictionary(session: SessionDep, user: ViewerUser, station_id: int) -> DictionaryOut:
    stations.get_station(session, station_id, user=user)
    return DictionaryOut(
        station=service.station_dictionary(session, station_id),
        builtin_count=len(BUILTIN_ABBREVIATIONS),
    )


@router.put("/stations/{station_id}/abbreviations", response_model=DictionaryOut)
def put_dictionary(
    session: SessionDep, user: EditorUser, station_id: int, body: Dictionary
) -> DictionaryOut:
    """Replace the station's pronunciation dictionary."""
    stations.get_station(session, station_id, user=user)
    from app.text import nfc

    entries = {nfc(k): nfc(v) for k, v in body.entries.items()}
    service.replace_dictionary(session, station_id=station_id, entries=entries, actor=user)
    return DictionaryOut(station=entries, builtin_count=len(BUILTIN_ABBREVIATIONS))
