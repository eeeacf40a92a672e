"""A segment's audio: make an uploaded or synthesised recording the audio of a draft.

Rules:

* Audio may change only while the segment is a draft (409 otherwise), and only from the
  version the caller last saw when it names one (412 otherwise). An approved segment that
  has no audio yet (its text approved before recording) may get its first audio.
* Audio replaced is never lost: every audio a segment has had stays in its history (read
  from the audit log, whose events name each asset attached) and can be made its audio
  again ("Khôi phục", `restore_audio`), under the same rules as a new one.
* Decoding, measuring, normalising and encoding take seconds: they run with no
  transaction open. The segment is read first, then changed in one short transaction
  only if its version is still the one read (the optimistic check), so a concurrent edit
  is never overwritten. On any failure the segment is unchanged and no scratch file is
  left behind.
* Every change is audited: the segment before and after, with the asset's origin and
  TTS engine.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audio import service as audio
from app.audio.models import AudioAsset
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.db import flush_versioned, unit_of_work
from app.errors import Conflict, NotFound
from app.segments import service
from app.segments.models import Segment, SegmentStatus
from app.segments.schemas import AudioHistoryItem, SegmentOut

# The audit actions that attach an asset to a segment (their `after` names it).
AUDIO_ACTIONS = ("segment.audio", "segment.tts", "segment.audio-restore")


def check_audio_editable(segment: Segment, expected_version: int | None) -> None:
    """Audio may change only on a draft, and only from the version the caller last saw; an
    approved segment without audio (its text approved before recording) may get its first."""
    service.check_version(segment, expected=expected_version, required=False)
    if segment.status == SegmentStatus.draft.value:
        return
    if segment.status == SegmentStatus.approved.value and segment.audio_id is None:
        return
    raise Conflict(
        f"segment {segment.id} is {segment.status}; its audio can only change while draft"
    )


def set_segment_audio(
    session: Session,
    *,
    segment: Segment,
    user: User,
    expected_version: int | None,
    action: str,
    asset_id: int | None = None,
    new_asset: dict[str, object] | None = None,
) -> AudioAsset:
    """Make an existing asset (asset_id) or a new one (new_asset's columns, sha256
    included) the segment's audio, checked and audited; flushes."""
    check_audio_editable(segment, expected_version)
    before = service.snapshot(session, segment)
    if asset_id is not None:
        asset = session.get_one(AudioAsset, asset_id)
    else:
        assert new_asset is not None
        fields = dict(new_asset)
        asset = audio.register_asset(session, sha256=str(fields.pop("sha256")), **fields)
    segment.audio_id = asset.id
    flush_versioned(session, f"segment {segment.id}")
    audit.record(
        session,
        actor=user,
        action=action,
        entity="segment",
        entity_id=segment.id,
        before=before,
        after={
            **service.snapshot(session, segment),
            "origin": asset.origin,
            "tts_engine": asset.tts_engine,
        },
    )
    return asset


def attach_asset(
    *,
    segment_id: int,
    user: User,
    expected_version: int,
    action: str,
    asset_id: int | None = None,
    new_asset: dict[str, object] | None = None,
) -> AudioAsset:
    """In its own short transaction: ``set_segment_audio`` on the segment, locked."""
    with unit_of_work() as session:
        segment = service.get_segment(session, segment_id, user=user, for_update=True)
        return set_segment_audio(
            session,
            segment=segment,
            user=user,
            expected_version=expected_version,
            action=action,
            asset_id=asset_id,
            new_asset=new_asset,
        )


def check_upload_target(*, segment_id: int, user: User, expected_version: int | None) -> None:
    """Refuse an upload before its body is read (up to 100 MB) when the segment cannot
    take it: missing, not a draft, or not at the version the caller named."""
    with unit_of_work(write=False) as session:
        segment = service.get_segment(session, segment_id, user=user)
        check_audio_editable(segment, expected_version)


def upload_audio(
    *,
    segment_id: int,
    user: User,
    upload: Path,
    filename: str | None,
    expected_version: int | None,
) -> SegmentOut:
    """Ingest an uploaded file and make it the segment's audio; the segment as the API
    shows it afterwards.

    Three steps: read the segment's version (checked against expected_version), ingest
    and store the file with no transaction open (422 for unusable audio), then attach it
    in one transaction only if the segment is still at the version read.
    """
    with unit_of_work(write=False) as session:
        segment = service.get_segment(session, segment_id, user=user)
        check_audio_editable(segment, expected_version)
        version = segment.version
    new_asset = audio.ingest_upload(upload, filename=filename)
    with unit_of_work() as session:
        segment = service.get_segment(session, segment_id, user=user, for_update=True)
        set_segment_audio(
            session,
            segment=segment,
            user=user,
            expected_version=version,
            action="segment.audio",
            new_asset=new_asset,
        )
        return service.to_out(session, segment)


def audio_history(session: Session, *, segment: Segment) -> list[AudioHistoryItem]:
    """Every audio the segment has had, newest first, the current one marked."""
    events = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.entity == "segment",
            AuditEvent.entity_id == segment.id,
            AuditEvent.action.in_(AUDIO_ACTIONS),
        )
        .order_by(AuditEvent.id.desc())
    ).all()
    attached: dict[int, AuditEvent | None] = {}
    for event in events:
        asset_id = (event.after or {}).get("audio_id")
        if isinstance(asset_id, int) and asset_id not in attached:
            attached[asset_id] = event
    for older in events:  # an audio attached before the log named it (older data)
        earlier = (older.before or {}).get("audio_id")
        if isinstance(earlier, int) and earlier not in attached:
            attached[earlier] = None
    if segment.audio_id is not None and segment.audio_id not in attached:
        attached = {segment.audio_id: None, **attached}
    assets = {
        a.id: a for a in session.scalars(select(AudioAsset).where(AudioAsset.id.in_(attached)))
    }
    names = {
        u.id: u.full_name or u.username
        for u in session.scalars(
            select(User).where(
                User.id.in_({e.actor_user_id for e in attached.values() if e and e.actor_user_id})
            )
        )
    }
    items = []
    for asset_id, attaching in attached.items():
        asset = assets.get(asset_id)
        if asset is None:
            continue
        by = None
        if attaching is not None:
            by = names.get(attaching.actor_user_id or 0, attaching.actor)
        items.append(
            AudioHistoryItem(
                audio_id=asset.id,
                sha256=asset.sha256,
                duration_ms=asset.duration_ms,
                loudness_lufs=asset.loudness_lufs,
                origin=asset.origin,
                tts_engine=asset.tts_engine,
                attached_at=attaching.created_at if attaching else asset.created_at,
                attached_by=by,
                current=asset.id == segment.audio_id,
            )
        )
    return items


def restore_audio(
    session: Session,
    *,
    segment: Segment,
    user: User,
    audio_id: int,
    expected_version: int | None,
) -> AudioAsset:
    """Make an audio the segment had before its audio again (404 for one it never had)."""
    known = {item.audio_id for item in audio_history(session, segment=segment)}
    if audio_id not in known:
        raise NotFound(f"audio {audio_id} was never the audio of segment {segment.id}")
    if audio_id == segment.audio_id:
        raise Conflict(f"audio {audio_id} is already the audio of segment {segment.id}")
    return set_segment_audio(
        session,
        segment=segment,
        user=user,
        expected_version=expected_version,
        action="segment.audio-restore",
        asset_id=audio_id,
    )
