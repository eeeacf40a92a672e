"""A segment's audio: make an uploaded or synthesised recording the audio of a draft.

Rules:

* Audio may change only while the segment is a draft (409 otherwise), and only from the
  version the caller last saw when it names one (412 otherwise).
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

from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audio import service as audio
from app.audio.models import AudioAsset
from app.audit import service as audit
from app.db import flush_versioned, unit_of_work
from app.errors import Conflict
from app.segments import service
from app.segments.models import Segment, SegmentStatus
from app.segments.schemas import SegmentOut


def check_audio_editable(segment: Segment, expected_version: int | None) -> None:
    """Audio may change only on a draft, and only from the version the caller last saw."""
    service.check_version(segment, expected=expected_version, required=False)
    if segment.status != SegmentStatus.draft.value:
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
