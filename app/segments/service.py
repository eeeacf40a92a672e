"""The segment queue: create, edit while draft, submit, withdraw, approve, reject, delete.

Who may do what, beyond the roles: an editor deletes only the drafts it created and
withdraws only the submissions it made (an admin may do both for anyone), 403 otherwise;
an approved segment is never withdrawn (409).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from app import clock, db
from app.accounts.models import Role, User
from app.audio import service as audio_service
from app.audio.models import AudioAsset
from app.audit import service as audit
from app.db import flush_versioned
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.segments.models import Priority, Segment, SegmentStatus, SegmentVillage, Topic
from app.segments.schemas import SegmentOut
from app.stations import service as stations
from app.stations.models import Programme, Station, Village
from app.text import fold

EDITABLE_FIELDS = ("title", "topic", "script", "target_month", "priority")


def resolve_station_id(session: Session, *, user: User, requested: int | None) -> int:
    """The station a new segment belongs to: asked for, the user's own, or the only one."""
    if requested is not None:
        if session.get(Station, requested) is None or not stations.can_see_station(user, requested):
            raise NotFound(f"station {requested} does not exist")
        return requested
    if user.station_id is not None:
        return user.station_id
    ids = session.scalars(select(Station.id).limit(2)).all()
    if len(ids) == 1 and stations.can_see_station(user, ids[0]):
        return ids[0]
    raise Invalid("station_id is required: you are not attached to one station")


def _check_villages(session: Session, *, station_id: int, village_ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(village_ids))
    if not wanted:
        return []
    found = set(
        session.scalars(
            select(Village.id).where(Village.station_id == station_id, Village.id.in_(wanted))
        )
    )
    missing = [v for v in wanted if v not in found]
    if missing:
        raise Invalid(
            f"unknown village id(s) for station {station_id}: {', '.join(map(str, missing))}"
        )
    return wanted


def village_ids_of(session: Session, segment_id: int) -> list[int]:
    return list(
        session.scalars(
            select(SegmentVillage.village_id)
            .where(SegmentVillage.segment_id == segment_id)
            .order_by(SegmentVillage.village_id)
        )
    )


def _set_villages(session: Session, segment: Segment, village_ids: list[int]) -> None:
    session.execute(delete(SegmentVillage).where(SegmentVillage.segment_id == segment.id))
    session.add_all(SegmentVillage(segment_id=segment.id, village_id=v) for v in village_ids)


def snapshot(session: Session, segment: Segment) -> dict[str, Any]:
    """The audited view of a segment."""
    data: dict[str, Any] = {f: getattr(segment, f) for f in EDITABLE_FIELDS}
    data["programme_id"] = segment.programme_id
    data["status"] = segment.status
    data["village_ids"] = village_ids_of(session, segment.id)
    data["audio_id"] = segment.audio_id
    data["version"] = segment.version
    return data


def create_segment(
    session: Session,
    *,
    user: User,
    title: str,
    programme: str,
    topic: str,
    script: str | None = None,
    target_month: str | None = None,
    village_ids: Sequence[int] = (),
    priority: str = "normal",
    station_id: int | None = None,
) -> Segment:
    """A new draft segment of the user's station."""
    sid = resolve_station_id(session, user=user, requested=station_id)
    prog = stations.get_programme(session, station_id=sid, code=programme)
    villages = _check_villages(session, station_id=sid, village_ids=village_ids)
    segment = Segment(
        station_id=sid,
        programme_id=prog.id,
        title=title,
        topic=topic,
        script=script,
        target_month=target_month,
        priority=priority,
        status=SegmentStatus.draft.value,
        created_by_id=user.id,
    )
    session.add(segment)
    session.flush()
    _set_villages(session, segment, villages)
    session.flush()
    audit.record(
        session,
        actor=user,
        action="segment.create",
        entity="segment",
        entity_id=segment.id,
        after=snapshot(session, segment),
    )
    return segment


def get_segment(
    session: Session, segment_id: int, *, user: User, for_update: bool = False
) -> Segment:
    """The segment, or 404 when it does not exist or belongs to another station."""
    return stations.get_in_station(
        session, Segment, segment_id, what="segment", user=user, for_update=for_update
    )


def list_query(
    *,
    user: User,
    status: SegmentStatus | None = None,
    programme: str | None = None,
    month: str | None = None,
    station_id: int | None = None,
    topic: Topic | None = None,
    q: str | None = None,
) -> Select[tuple[Segment]]:
    """Segments visible to the user, newest first, filtered; `q` finds each of its words in
    the title or script, whatever their case and diacritics ("hanh chinh" → "Hành chính")."""
    stmt = select(Segment).order_by(Segment.id.desc())
    stmt = stations.scope_to_user(stmt, Segment.station_id, user)
    if station_id is not None:
        stmt = stmt.where(Segment.station_id == station_id)
    if status is not None:
        stmt = stmt.where(Segment.status == status.value)
    if programme is not None:
        stmt = stmt.join(Programme, Programme.id == Segment.programme_id).where(
            Programme.code == programme
        )
    if month is not None:
        stmt = stmt.where(Segment.target_month == month)
    if topic is not None:
        stmt = stmt.where(Segment.topic == topic.value)
    for word in fold(q or "").split()[:10]:
        stmt = stmt.where(Segment.search_text.contains(word, autoescape=True))
    return stmt


def check_version(segment: Segment, *, expected: int | None, required: bool = True) -> None:
    """Refuse a write based on an older version of the segment."""
    db.check_version(
        f"segment {segment.id}", current=segment.version, expected=expected, required=required
    )


def _require_status(segment: Segment, allowed: SegmentStatus, doing: str) -> None:
    if segment.status != allowed.value:
        raise Conflict(
            f"segment {segment.id} is {segment.status}; "
            f"only {allowed.value} segments can be {doing}"
        )


def update_segment(
    session: Session,
    *,
    user: User,
    segment: Segment,
    changes: dict[str, Any],
    expected_version: int | None,
) -> Segment:
    """Change a draft; `changes` holds only the fields the caller sent."""
    check_version(segment, expected=expected_version)
    _require_status(segment, SegmentStatus.draft, "changed")
    before = snapshot(session, segment)
    if "programme" in changes:
        prog = stations.get_programme(
            session, station_id=segment.station_id, code=changes["programme"]
        )
        segment.programme_id = prog.id
    for field in EDITABLE_FIELDS:
        if field in changes:
            if field in ("title", "topic", "priority") and changes[field] is None:
                raise Invalid(f"{field} cannot be null")
            setattr(segment, field, changes[field])
    if "village_ids" in changes:
        villages = _check_villages(
            session, station_id=segment.station_id, village_ids=changes["village_ids"] or []
        )
        _set_villages(session, segment, villages)
    # Touch the row so its version moves even when only the villages changed.
    segment.updated_at = clock.now()
    flush_versioned(session, f"segment {segment.id}")
    audit.record(
        session,
        actor=user,
        action="segment.update",
        entity="segment",
        entity_id=segment.id,
        before=before,
        after=snapshot(session, segment),
    )
    return segment


def delete_segment(
    session: Session, *, user: User, segment: Segment, expected_version: int | None
) -> None:
    """Delete a draft its creator (or an admin) no longer wants."""
    check_version(segment, expected=expected_version, required=False)
    _require_status(segment, SegmentStatus.draft, "deleted")
    _require_own(user, segment, "delete")
    before = snapshot(session, segment)
    segment_id = segment.id
    session.delete(segment)
    flush_versioned(session, f"segment {segment.id}")
    audit.record(
        session,
        actor=user,
        action="segment.delete",
        entity="segment",
        entity_id=segment_id,
        before=before,
    )


def _transition(
    session: Session,
    *,
    user: User,
    segment: Segment,
    expected_version: int | None,
    action: str,
    apply: Any,
) -> Segment:
    check_version(segment, expected=expected_version, required=False)
    before = snapshot(session, segment)
    apply()
    flush_versioned(session, f"segment {segment.id}")
    audit.record(
        session,
        actor=user,
        action=f"segment.{action}",
        entity="segment",
        entity_id=segment.id,
        before=before,
        after=snapshot(session, segment),
    )
    return segment


def submit_segment(
    session: Session, *, user: User, segment: Segment, expected_version: int | None = None
) -> Segment:
    """draft → submitted: the editor hands it to the approver."""
    _require_status(segment, SegmentStatus.draft, "submitted")
    if not (segment.script and segment.script.strip()) and segment.audio_id is None:
        raise Invalid(f"segment {segment.id} has neither a script nor audio; add one first")

    def apply() -> None:
        segment.status = SegmentStatus.submitted.value
        segment.submitted_at = clock.now()
        segment.rejection_reason = None

    return _transition(
        session,
        user=user,
        segment=segment,
        expected_version=expected_version,
        action="submit",
        apply=apply,
    )


def _require_own(user: User, segment: Segment, doing: str) -> None:
    if segment.created_by_id != user.id and not Role(user.role).at_least(Role.admin):
        raise Forbidden(f"only the editor who created segment {segment.id} may {doing} it")


def withdraw_segment(
    session: Session, *, user: User, segment: Segment, expected_version: int | None = None
) -> Segment:
    """submitted → draft: the editor takes its own submission back to change it."""
    _require_status(segment, SegmentStatus.submitted, "withdrawn")
    _require_own(user, segment, "withdraw")

    def apply() -> None:
        segment.status = SegmentStatus.draft.value
        segment.submitted_at = None

    return _transition(
        session,
        user=user,
        segment=segment,
        expected_version=expected_version,
        action="withdraw",
        apply=apply,
    )


def approve_segment(
    session: Session, *, user: User, segment: Segment, expected_version: int | None = None
) -> Segment:
    """submitted → approved."""
    _require_status(segment, SegmentStatus.submitted, "approved")

    def apply() -> None:
        segment.status = SegmentStatus.approved.value
        segment.approved_at = clock.now()
        segment.approved_by_id = user.id

    return _transition(
        session,
        user=user,
        segment=segment,
        expected_version=expected_version,
        action="approve",
        apply=apply,
    )


def reject_segment(
    session: Session,
    *,
    user: User,
    segment: Segment,
    reason: str,
    expected_version: int | None = None,
) -> Segment:
    """submitted → draft, with the approver's reason for the editor."""
    _require_status(segment, SegmentStatus.submitted, "rejected")

    def apply() -> None:
        segment.status = SegmentStatus.draft.value
        segment.rejection_reason = reason
        segment.submitted_at = None

    return _transition(
        session,
        user=user,
        segment=segment,
        expected_version=expected_version,
        action="reject",
        apply=apply,
    )


def to_out(session: Session, segment: Segment) -> SegmentOut:
    """The API view of one segment."""
    return to_out_many(session, [segment])[0]


def to_out_many(session: Session, segments: Sequence[Segment]) -> list[SegmentOut]:
    """API views of many segments with a fixed number of queries (no N+1)."""
    if not segments:
        return []
    ids = [s.id for s in segments]
    villages: dict[int, list[int]] = {i: [] for i in ids}
    for seg_id, village_id in session.execute(
        select(SegmentVillage.segment_id, SegmentVillage.village_id)
        .where(SegmentVillage.segment_id.in_(ids))
        .order_by(SegmentVillage.village_id)
    ):
        villages[seg_id].append(village_id)
    codes: dict[int, str] = {
        pid: code
        for pid, code in session.execute(
            select(Programme.id, Programme.code).where(
                Programme.id.in_({s.programme_id for s in segments})
            )
        )
    }
    audio_ids = {s.audio_id for s in segments if s.audio_id is not None}
    audio = {
        a.id: a for a in session.scalars(select(AudioAsset).where(AudioAsset.id.in_(audio_ids)))
    }
    user_ids = {s.created_by_id for s in segments if s.created_by_id is not None}
    names: dict[int, tuple[str, str | None]] = {
        uid: (name, full)
        for uid, name, full in session.execute(
            select(User.id, User.username, User.full_name).where(User.id.in_(user_ids))
        )
    }
    out = []
    for s in segments:
        asset = audio.get(s.audio_id) if s.audio_id is not None else None
        out.append(
            SegmentOut(
                id=s.id,
                station_id=s.station_id,
                programme=codes[s.programme_id],
                title=s.title,
                topic=Topic(s.topic),
                script=s.script,
                target_month=s.target_month,
                village_ids=villages[s.id],
                priority=Priority(s.priority),
                status=SegmentStatus(s.status),
                rejection_reason=s.rejection_reason,
                duration_ms=asset.duration_ms if asset else None,
                loudness_lufs=asset.loudness_lufs if asset else None,
                true_peak_dbtp=asset.true_peak_dbtp if asset else None,
                loudness_range_lu=asset.loudness_range_lu if asset else None,
                audio_sha256=asset.sha256 if asset else None,
                audio_warnings=audio_service.audio_warnings(asset),
                created_by=names[s.created_by_id][0] if s.created_by_id in names else None,
                created_by_name=(names[s.created_by_id][1] or names[s.created_by_id][0])
                if s.created_by_id in names
                else None,
                audio_id=s.audio_id,
                created_at=s.created_at,
                updated_at=s.updated_at,
                submitted_at=s.submitted_at,
                approved_at=s.approved_at,
                version=s.version,
            )
        )
    return out
