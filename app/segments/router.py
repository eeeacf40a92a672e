"""Segment endpoints: thin wrappers around app.segments.service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.accounts.deps import ApproverUser, EditorUser, ViewerUser
from app.audio import service as audio
from app.audio.upload import receive_file
from app.config import get_settings
from app.db import DbId, SessionDep
from app.errors import responses
from app.http import expected_version, parse_if_match, version_etag
from app.pagination import Page, PageDep, paginate
from app.segments import audio as segment_audio
from app.segments import service
from app.segments.models import SegmentStatus
from app.segments.schemas import (
    AudioHistoryItem,
    Month,
    RejectBody,
    RestoreAudioBody,
    SegmentCreate,
    SegmentOut,
    SegmentUpdate,
)

router = APIRouter(prefix="/api/v1/segments", tags=["segments"])

# Read by app.audio.upload as it streams, so documented by hand.
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        }
    },
}

IfMatch = Annotated[str | None, Header(description='the ETag from a read, e.g. "3"')]


def _reply(response: Response, out: SegmentOut) -> SegmentOut:
    response.headers["ETag"] = version_etag(out.version)
    return out


@router.post("", response_model=SegmentOut, status_code=status.HTTP_201_CREATED)
def create_segment(
    session: SessionDep, user: EditorUser, body: SegmentCreate, response: Response
) -> SegmentOut:
    segment = service.create_segment(
        session,
        user=user,
        title=body.title,
        programme=body.programme,
        topic=body.topic.value,
        script=body.script,
        target_month=body.target_month,
        village_ids=body.village_ids,
        priority=body.priority.value,
        station_id=body.station_id,
    )
    response.headers["Location"] = f"/api/v1/segments/{segment.id}"
    return _reply(response, service.to_out(session, segment))


@router.get("", response_model=Page[SegmentOut])
def list_segments(
    session: SessionDep,
    user: ViewerUser,
    page: PageDep,
    status: SegmentStatus | None = None,
    programme: Annotated[str | None, Query(max_length=40)] = None,
    month: Month | None = None,
    station_id: DbId | None = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="words to find in title or script, any case or accents"),
    ] = None,
) -> Page[SegmentOut]:
    """Segments, newest first."""
    stmt = service.list_query(
        user=user, status=status, programme=programme, month=month, station_id=station_id, q=q
    )
    rows, total = paginate(session, stmt, page)
    return Page(
        items=service.to_out_many(session, rows), total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{segment_id}", response_model=SegmentOut)
def get_segment(
    session: SessionDep, user: ViewerUser, segment_id: DbId, response: Response
) -> SegmentOut:
    segment = service.get_segment(session, segment_id, user=user)
    return _reply(response, service.to_out(session, segment))


@router.patch("/{segment_id}", response_model=SegmentOut, responses=responses(412, 428))
def update_segment(
    session: SessionDep,
    user: EditorUser,
    segment_id: DbId,
    body: SegmentUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> SegmentOut:
    """Change a draft. Needs the current version (If-Match or `version`): stale writes get 412."""
    segment = service.get_segment(session, segment_id, user=user, for_update=True)
    changes = body.model_dump(exclude_unset=True, exclude={"version"}, mode="json")
    service.update_segment(
        session,
        user=user,
        segment=segment,
        changes=changes,
        expected_version=expected_version(if_match, body.version),
    )
    return _reply(response, service.to_out(session, segment))


@router.delete("/{segment_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(412))
def delete_segment(
    session: SessionDep, user: EditorUser, segment_id: DbId, if_match: IfMatch = None
) -> Response:
    """Delete a draft, by the editor who created it (or an admin): 403 for another's."""
    segment = service.get_segment(session, segment_id, user=user, for_update=True)
    service.delete_segment(
        session, user=user, segment=segment, expected_version=expected_version(if_match)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{segment_id}/submit", response_model=SegmentOut, responses=responses(412))
def submit_segment(
    session: SessionDep,
    user: EditorUser,
    segment_id: DbId,
    response: Response,
    if_match: IfMatch = None,
) -> SegmentOut:
    segment = service.get_segment(session, segment_id, user=user, for_update=True)
    service.submit_segment(
        session, user=user, segment=segment, expected_version=expected_version(if_match)
    )
    return _reply(response, service.to_out(session, segment))


@router.post(
    "/{segment_id}/withdraw", response_model=SegmentOut, responses=responses(403, 409, 412)
)
def withdraw_segment(
    session: SessionDep,
    user: EditorUser,
    segment_id: DbId,
    response: Response,
    if_match: IfMatch = None,
) -> SegmentOut:
    """submitted → draft, by the editor who created it (an approved segment: 409)."""
    segment = service.get_segment(session, segment_id, user=user, for_update=True)
    service.withdraw_segment(
        session, user=user, segment=segment, expected_version=expected_version(if_match)
    )
    return _reply(response, service.to_out(session, segment))


@router.get("/{segment_id}/audio-history", response_model=list[AudioHistoryItem])
def audio_history(
    session: SessionDep, user: ViewerUser, segment_id: DbId
) -> list[AudioHistoryItem]:
    """Every audio the segment has had, newest first; all but the current can be restored."""
    segment = service.get_segment(session, segment_id, user=user)
    return segment_audio.audio_history(session, segment=segment)


@router.post(
    "/{segment_id}/audio/restore", response_model=SegmentOut, responses=responses(409, 412)
)
def restore_audio(
    session: SessionDep,
    user: EditorUser,
    segment_id: DbId,
    body: RestoreAudioBody,
    response: Response,
    if_match: IfMatch = None,
) -> SegmentOut:
    """Make an earlier audio of the segment its audio again (404 for one it never had)."""
    segment = service.get_segment(session, segment_id, user=user, for_update=True)
    segment_audio.restore_audio(
        session,
        segment=segment,
        user=user,
        audio_id=body.audio_id,
        expected_version=expected_version(if_match, body.version),
    )
    return _reply(response, service.to_out(session, segment))


@router.post("/{segment_id}/approve", response_model=SegmentOut, responses=responses(412))
def approve_segment(
    session: SessionDep,
    user: ApproverUser,
    segment_id: DbId,
    response: Response,
    if_match: IfMatch = None,
) -> SegmentOut:
    segment = service.get_segment(session, segment_id, user=user, for_update=True)
    service.approve_segment(
        session, user=user, segment=segment, expected_version=expected_version(if_match)
    )
    return _reply(response, service.to_out(session, segment))


@router.post("/{segment_id}/reject", response_model=SegmentOut, responses=responses(412))
def reject_segment(
    session: SessionDep,
    user: ApproverUser,
    segment_id: DbId,
    body: RejectBody,
    response: Response,
    if_match: IfMatch = None,
) -> SegmentOut:
    segment = service.get_segment(session, segment_id, user=user, for_update=True)
    service.reject_segment(
        session,
        user=user,
        segment=segment,
        reason=body.reason,
        expected_version=expected_version(if_match),
    )
    return _reply(response, service.to_out(session, segment))


@router.put(
    "/{segment_id}/audio",
    response_model=SegmentOut,
    responses=responses(412, 415),
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload_audio(
    request: Request,
    response: Response,
    user: EditorUser,
    segment_id: DbId,
    if_match: IfMatch = None,
) -> SegmentOut:
    """Multipart `file`: MP3, WAV, OGG/Opus, M4A/AAC or FLAC, measured and normalised."""
    expected = parse_if_match(if_match)
    # Refuse before reading up to 100 MB for a segment that cannot take it.
    await run_in_threadpool(
        segment_audio.check_upload_target,
        segment_id=segment_id,
        user=user,
        expected_version=expected,
    )
    settings = get_settings()
    received = await receive_file(
        request,
        field="file",
        dest_dir=audio.work_dir(),
        max_bytes=settings.max_upload_bytes,
        idle_s=settings.body_idle_seconds,
        deadline_s=settings.upload_deadline_seconds,
    )
    try:
        # Decoding and encoding take seconds: off the event loop, no transaction open.
        out = await run_in_threadpool(
            segment_audio.upload_audio,
            segment_id=segment_id,
            user=user,
            upload=received.path,
            filename=received.filename,
            expected_version=expected,
        )
    finally:
        received.path.unlink(missing_ok=True)
    return _reply(response, out)
