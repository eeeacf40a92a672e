"""Text-to-speech: preview the read-aloud text, draft a segment's audio, the dictionary."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Response
from starlette.concurrency import run_in_threadpool

from app.accounts.deps import EditorUser, ViewerUser
from app.audio import listen
from app.db import DbId, SessionDep
from app.errors import responses
from app.http import version_etag
from app.stations import service as stations
from app.tts import service
from app.tts.normalize import BUILTIN_ABBREVIATIONS
from app.tts.schemas import Dictionary, DictionaryOut, PreviewOut, SegmentTTSOut, TTSRequest

router = APIRouter(prefix="/api/v1", tags=["tts"])


@router.get("/tts/preview", response_model=PreviewOut)
def tts_preview(
    session: SessionDep,
    user: EditorUser,
    text: Annotated[str, Query(max_length=20_000)],
    station_id: DbId | None = None,
) -> PreviewOut:
    """The text as it will be read aloud, after normalisation (station dictionary included)."""
    return PreviewOut(
        text=service.preview_for_user(session, text=text, user=user, station_id=station_id)
    )


@router.post(
    "/segments/{segment_id}/tts", response_model=SegmentTTSOut, responses=responses(412, 503)
)
async def draft_tts(
    user: EditorUser,
    segment_id: DbId,
    body: TTSRequest,
    response: Response,
    background: BackgroundTasks,
) -> SegmentTTSOut:
    """Draft the segment's audio from its script (gTTS, or espeak-ng offline).

    Synthesis runs in the thread pool, never on the event loop; the service opens its own
    short transactions around it, so none stays open while audio is made.
    """
    out = await run_in_threadpool(
        service.draft_segment_audio,
        segment_id=segment_id,
        user=user,
        engine=body.engine,
        expected_version=body.version,
    )
    response.headers["ETag"] = version_etag(out.version)
    listen.make_soon(background, out.audio_sha256)  # after the answer: never delays it
    return out


@router.get("/stations/{station_id}/abbreviations", response_model=DictionaryOut)
def get_dictionary(session: SessionDep, user: ViewerUser, station_id: DbId) -> DictionaryOut:
    stations.get_station(session, station_id, user=user)
    return DictionaryOut(
        station=service.station_dictionary(session, station_id),
        builtin_count=len(BUILTIN_ABBREVIATIONS),
    )


@router.put("/stations/{station_id}/abbreviations", response_model=DictionaryOut)
def put_dictionary(
    session: SessionDep, user: EditorUser, station_id: DbId, body: Dictionary
) -> DictionaryOut:
    """Replace the station's pronunciation dictionary."""
    stations.get_station(session, station_id, user=user)
    entries = service.replace_dictionary(
        session, station_id=station_id, entries=body.entries, actor=user
    )
    return DictionaryOut(station=entries, builtin_count=len(BUILTIN_ABBREVIATIONS))
