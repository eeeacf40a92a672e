"""Audio upload: a segment's recording (downloads are playout's: app.playout.router)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from app.accounts.deps import EditorUser
from app.accounts.models import User
from app.audio import service
from app.audio.upload import receive_file
from app.config import get_settings
from app.db import unit_of_work
from app.http import parse_if_match
from app.http import version_etag as etag
from app.segments import service as segments
from app.segments.schemas import SegmentOut

router = APIRouter(prefix="/api/v1", tags=["audio"])


@router.put("/segments/{segment_id}/audio", response_model=SegmentOut)
async def upload_audio(
    request: Request,
    response: Response,
    user: EditorUser,
    segment_id: int,
    if_match: Annotated[str | None, Header()] = None,
) -> SegmentOut:
    """Multipart `file`: MP3, WAV, OGG/Opus, M4A/AAC or FLAC, measured and normalised."""
    settings = get_settings()
    expected = parse_if_match(if_match)
    # Refuse before reading up to 100 MB for a segment that cannot take it.
    await run_in_threadpool(_check_target, segment_id, user, expected)
    received = await receive_file(
        request, field="file", dest_dir=service.work_dir(), max_bytes=settings.max_upload_bytes
    )
    try:
        # Decoding and encoding take seconds: off the event loop.
        await run_in_threadpool(
            service.attach_upload,
            segment_id=segment_id,
            user=user,
            upload=received.path,
            filename=received.filename,
            expected_version=expected,
        )
    finally:
        received.path.unlink(missing_ok=True)
    out = await run_in_threadpool(_segment_out, segment_id, user)
    response.headers["ETag"] = etag(out.version)
    return out


def _check_target(segment_id: int, user: User, expected: int | None) -> None:
    with unit_of_work(write=False) as session:
        segment = segments.get_segment(session, segment_id, user=user)
        service.check_audio_editable(segment, expected)


def _segment_out(segment_id: int, user: object) -> SegmentOut:
    with unit_of_work(write=False) as session:
        return segments.to_out(session, segments.get_segment(session, segment_id, user=user))  # type: ignore[arg-type]


__all__ = ["etag", "router"]
