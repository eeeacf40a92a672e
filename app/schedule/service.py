"""Broadcasts and their rundowns: create, move, cancel, set the rundown, check the window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audio import listen
from app.audio import service as audio
from app.audio.models import AudioAsset
from app.audit import service as audit
from app.db import add_unique, check_version, flush_versioned
from app.durations import describe_ms
from app.errors import Conflict, Invalid
from app.playout import signals
from app.schedule.cadence import local_month, move_within_month, parse_month
from app.schedule.models import Broadcast, BroadcastStatus, RundownItem
from app.schedule.schemas import BroadcastOut, MasterOut
from app.segments.models import Segment, SegmentStatus, SegmentVillage
from app.stations import service as stations
from app.stations.models import Programme, Station, Village
from app.stations.network import network_for

ACTIVE = (BroadcastStatus.planned.value, BroadcastStatus.assembled.value)


def station_zone(station: Station) -> ZoneInfo:
    return ZoneInfo(station.timezone)


def period_key(
    programme: Programme, starts_at: datetime, village_id: int | None, tz: ZoneInfo
) -> str:
    """What "once per period" means for this programme: the local month, or the slot."""
    return period_key_for(programme.cadence.get("kind", ""), starts_at, village_id, tz)


def period_key_for(kind: str, starts_at: datetime, village_id: int | None, tz: ZoneInfo) -> str:
    """ "2024-03" for a monthly station programme; village and weekly keys name the village."""
    if kind == "monthly":
        month = local_month(starts_at, tz)
        return month if village_id is None else f"v{village_id}:{month}"
    local = starts_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M")
    return f"v{village_id}:{local}"


def describe_local(dt: datetime, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _scope_check(
    session: Session, programme: Programme, station_id: int, village_id: int | None
) -> None:
    if programme.scope == "station" and village_id is not None:
        raise Invalid(f"programme {programme.code} airs on the station, not on a village")
    if programme.scope == "village":
        if village_id is None:
            raise Invalid(f"programme {programme.code} airs in a village: village_id is required")
        village = session.get(Village, village_id)
        if village is None or village.station_id != station_id:
            raise Invalid(f"unknown village id for station {station_id}: {village_id}")


def existing_for_period(
    session: Session, *, station_id: int, programme_id: int, key: str
) -> Broadcast | None:
    return session.scalar(
        select(Broadcast).where(
            Broadcast.station_id == station_id,
            Broadcast.programme_id == programme_id,
            Broadcast.period_key == key,
            Broadcast.status != BroadcastStatus.cancelled.value,
        )
    )


def _period_taken(
    programme: Programme, key: str, other: Broadcast | None, tz: ZoneInfo
) -> Conflict:
    if programme.cadence.get("kind") == "monthly":
        what = f"already has its {programme.code} broadcast for {key}"
    else:
        what = f"already has a {programme.code} broadcast in that slot"
    where = f" (broadcast {other.id} at {describe_local(other.starts_at, tz)})" if other else ""
    return Conflict(f"station {programme.station_id} {what}{where}")


def create_broadcast(
    session: Session,
    *,
    station_id: int,
    programme_code: str,
    starts_at: datetime,
    village_id: int | None = None,
    actor: User | None = None,
) -> Broadcast:
    """A planned broadcast; 409 when its period (the CCHC month) already has one."""
    station = stations.get_station(session, station_id, user=actor)
    programme = stations.get_programme(session, station_id=station.id, code=programme_code)
    if programme.is_emergency:
        raise Invalid(f"programme {programme_code!r} holds emergencies: it has no broadcasts")
    _scope_check(session, programme, station.id, village_id)
    tz = station_zone(station)
    key = period_key(programme, starts_at, village_id, tz)
    other = existing_for_period(session, station_id=station.id, programme_id=programme.id, key=key)
    if other is not None:
        raise _period_taken(programme, key, other, tz)
    broadcast = Broadcast(
        station_id=station.id,
        programme_id=programme.id,
        village_id=village_id,
        starts_at=starts_at,
        period_key=key,
        local_month=local_month(starts_at, tz),
        status=BroadcastStatus.planned.value,
        network=network_for(station, starts_at),
    )
    # The partial unique index decides between racing requests.
    if not add_unique(session, broadcast):
        raise _period_taken(programme, key, None, tz)
    signals.playlist_changed(session, broadcast.station_id, broadcast.village_id)
    audit.record(
        session,
        actor=actor,
        action="broadcast.create",
        entity="broadcast",
        entity_id=broadcast.id,
        after=snapshot(broadcast, programme),
    )
    return broadcast


def snapshot(broadcast: Broadcast, programme: Programme | None = None) -> dict[str, Any]:
    return {
        "programme": programme.code if programme else broadcast.programme_id,
        "station_id": broadcast.station_id,
        "village_id": broadcast.village_id,
        "starts_at": broadcast.starts_at.isoformat(),
        "status": broadcast.status,
        "network": broadcast.network,
        "master_sha256": broadcast.master_sha256,
    }


def get_broadcast(
    session: Session, broadcast_id: int, *, user: User | None = None, for_update: bool = False
) -> Broadcast:
    """The broadcast, or 404 when it does not exist or belongs to another station."""
    return stations.get_in_station(
        session, Broadcast, broadcast_id, what="broadcast", user=user, for_update=for_update
    )


def list_query(
    *,
    user: User,
    station_id: int | None = None,
    programme: str | None = None,
    year: int | None = None,
    month: str | None = None,
    village_id: int | None = None,
) -> Select[tuple[Broadcast]]:
    """Broadcasts in time order, filtered by station, programme, local year or month."""
    stmt = select(Broadcast).order_by(Broadcast.starts_at, Broadcast.id)
    stmt = stations.scope_to_user(stmt, Broadcast.station_id, user)
    if station_id is not None:
        stmt = stmt.where(Broadcast.station_id == station_id)
    if programme is not None:
        stmt = stmt.join(Programme, Programme.id == Broadcast.programme_id).where(
            Programme.code == programme
        )
    if month is not None:
        parse_month(month)
        stmt = stmt.where(Broadcast.local_month == month)
    elif year is not None:
        # local_month is "YYYY-MM": the local year is its prefix.
        stmt = stmt.where(Broadcast.local_month.like(f"{year:04d}-%"))
    if village_id is not None:
        stmt = stmt.where(Broadcast.village_id == village_id)
    return stmt


def masters_out(session: Session, broadcasts: list[Broadcast]) -> dict[int, MasterOut]:
    """The measured master of each broadcast that has one, by broadcast id."""
    shas = {b.master_sha256 for b in broadcasts if b.master_sha256}
    assets = {
        a.sha256: a
        for a in session.scalars(select(AudioAsset).where(AudioAsset.sha256.in_(shas)))
    }
    out = {}
    for b in broadcasts:
        if b.master_sha256 is None:
            continue
        asset = assets.get(b.master_sha256)
        out[b.id] = MasterOut(
            sha256=b.master_sha256,
            duration_ms=b.master_duration_ms or (asset.duration_ms if asset else 0),
            loudness_lufs=asset.loudness_lufs if asset else None,
            true_peak_dbtp=asset.true_peak_dbtp if asset else None,
            loudness_range_lu=asset.loudness_range_lu if asset else None,
            warnings=audio.audio_warnings(asset)
            if asset
            else ["the master was never measured"],
            listen_url=listen.listen_url(asset.listen_sha256) if asset else None,
        )
    return out


def to_out_many(session: Session, broadcasts: Sequence[Broadcast]) -> list[BroadcastOut]:
    """The broadcasts as the API shows them: programme code, UTC and station-local start."""
    codes = {
        pid: code
        for pid, code in session.execute(
            select(Programme.id, Programme.code).where(
                Programme.id.in_({b.programme_id for b in broadcasts})
            )
        )
    }
    zones = {
        sid: ZoneInfo(tz)
        for sid, tz in session.execute(
            select(Station.id, Station.timezone).where(
                Station.id.in_({b.station_id for b in broadcasts})
            )
        )
    }
    masters = masters_out(session, list(broadcasts))
    return [
        BroadcastOut(
            id=b.id,
            station_id=b.station_id,
            programme=codes[b.programme_id],
            village_id=b.village_id,
            starts_at=b.starts_at.astimezone(UTC),
            starts_at_local=b.starts_at.astimezone(zones[b.station_id]),
            local_month=b.local_month,
            status=BroadcastStatus(b.status),
            priority=b.priority,
            network=b.network,
            master_sha256=b.master_sha256,
            master_duration_ms=b.master_duration_ms,
            master=masters.get(b.id),
            assembled_at=b.assembled_at,
            version=b.version,
        )
        for b in broadcasts
    ]


def to_out(session: Session, broadcast: Broadcast) -> BroadcastOut:
    """One broadcast as the API shows it (see to_out_many)."""
    return to_out_many(session, [broadcast])[0]


def _require_open(broadcast: Broadcast, doing: str) -> None:
    if broadcast.status not in ACTIVE:
        raise Conflict(f"broadcast {broadcast.id} is {broadcast.status}; it cannot be {doing}")


def move_broadcast(
    session: Session,
    *,
    broadcast: Broadcast,
    starts_at: datetime,
    expected_version: int | None = None,
    actor: User | None = None,
) -> Broadcast:
    """Move a broadcast; a monthly programme's broadcast stays within its local month."""
    check_version(f"broadcast {broadcast.id}", current=broadcast.version, expected=expected_version)
    _require_open(broadcast, "moved")
    station = session.get_one(Station, broadcast.station_id)
    programme = session.get_one(Programme, broadcast.programme_id)
    tz = station_zone(station)
    if programme.cadence.get("kind") == "monthly":
        try:
            move_within_month(broadcast.starts_at, starts_at, tz)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
    before = snapshot(broadcast, programme)
    key = period_key(programme, starts_at, broadcast.village_id, tz)
    if key != broadcast.period_key:
        other = existing_for_period(
            session, station_id=station.id, programme_id=programme.id, key=key
        )
        if other is not None and other.id != broadcast.id:
            raise _period_taken(programme, key, other, tz)
    session.flush()
    try:
        with session.begin_nested():
            broadcast.starts_at = starts_at
            broadcast.period_key = key
            broadcast.local_month = local_month(starts_at, tz)
            broadcast.network = network_for(station, starts_at)
            flush_versioned(session, f"broadcast {broadcast.id}")
    except IntegrityError as exc:
        raise _period_taken(programme, key, None, tz) from exc
    signals.playlist_changed(session, broadcast.station_id, broadcast.village_id)
    audit.record(
        session,
        actor=actor,
        action="broadcast.move",
        entity="broadcast",
        entity_id=broadcast.id,
        before=before,
        after=snapshot(broadcast, programme),
    )
    return broadcast


def cancel_broadcast(
    session: Session, *, broadcast: Broadcast, actor: User | None = None
) -> Broadcast:
    """Cancel a planned or assembled broadcast; it leaves the playlists."""
    _require_open(broadcast, "cancelled")
    before = snapshot(broadcast)
    broadcast.status = BroadcastStatus.cancelled.value
    flush_versioned(session, f"broadcast {broadcast.id}")
    signals.playlist_changed(session, broadcast.station_id, broadcast.village_id)
    audit.record(
        session,
        actor=actor,
        action="broadcast.cancel",
        entity="broadcast",
        entity_id=broadcast.id,
        before=before,
        after=snapshot(broadcast),
    )
    return broadcast


def rundown_segment_ids(session: Session, broadcast_id: int) -> list[int]:
    return list(
        session.scalars(
            select(RundownItem.segment_id)
            .where(RundownItem.broadcast_id == broadcast_id)
            .order_by(RundownItem.position)
        )
    )


def validate_rundown_segments(
    session: Session, *, broadcast: Broadcast, segment_ids: Sequence[int]
) -> list[Segment]:
    """The segments in order, or 422 naming each one that cannot go into this broadcast."""
    programme = session.get_one(Programme, broadcast.programme_id)
    if programme.is_relay:
        raise Invalid(
            f"segment_ids: {programme.code} relays a stream; its broadcasts have no rundown"
        )
    found = {s.id: s for s in session.scalars(select(Segment).where(Segment.id.in_(segment_ids)))}
    villages: dict[int, set[int]] = {}
    for seg_id, village_id in session.execute(
        select(SegmentVillage.segment_id, SegmentVillage.village_id).where(
            SegmentVillage.segment_id.in_(segment_ids)
        )
    ):
        villages.setdefault(seg_id, set()).add(village_id)
    problems = []
    for sid in segment_ids:
        seg = found.get(sid)
        if seg is None or seg.station_id != broadcast.station_id:
            problems.append(f"segment {sid} does not exist")
        elif seg.status != SegmentStatus.approved.value:
            problems.append(f"segment {sid} is {seg.status}, not approved")
        elif seg.programme_id != programme.id:
            problems.append(f"segment {sid} is not for programme {programme.code}")
        elif seg.audio_id is None:
            problems.append(f"segment {sid} has no audio yet")
        elif (
            broadcast.village_id is not None
            and villages.get(sid)
            and (broadcast.village_id not in villages[sid])
        ):
            problems.append(f"segment {sid} is meant for other villages")
    if problems:
        raise Invalid("; ".join(problems))
    return [found[sid] for sid in segment_ids]


class AiredElsewhere(Conflict):
    """Segments that already aired in another broadcast: placed again only when confirmed."""

    def __init__(self, message: str, *, aired: dict[int, list[int]]) -> None:
        super().__init__(message)
        self.aired = aired  # segment id -> the broadcasts it aired in


def aired_elsewhere(
    session: Session, *, broadcast: Broadcast, segment_ids: Sequence[int]
) -> dict[int, list[Broadcast]]:
    """Of these segments, those in the rundown of another broadcast that aired (status set
    by as-run intake through app.playout.aired), with those broadcasts, oldest first."""
    if not segment_ids:
        return {}
    rows = session.execute(
        select(RundownItem.segment_id, Broadcast)
        .join(Broadcast, Broadcast.id == RundownItem.broadcast_id)
        .where(
            RundownItem.segment_id.in_(list(segment_ids)),
            Broadcast.id != broadcast.id,
            Broadcast.status == BroadcastStatus.aired.value,
        )
        .order_by(Broadcast.starts_at, Broadcast.id)
    ).tuples()
    found: dict[int, list[Broadcast]] = {}
    for sid, aired in rows:
        found.setdefault(sid, []).append(aired)
    return found


def set_rundown(
    session: Session,
    *,
    broadcast: Broadcast,
    segment_ids: Sequence[int],
    actor: User | None = None,
    confirm_aired: bool = False,
) -> Broadcast:
    """Replace the rundown; a changed rundown needs assembling again.

    A segment newly placed here that already aired in another broadcast is refused (409,
    `AiredElsewhere`) unless `confirm_aired`: airing last month's news again is a choice
    someone makes, never an accident. Segments already in the rundown are not asked again.
    """
    _require_open(broadcast, "changed")
    validate_rundown_segments(session, broadcast=broadcast, segment_ids=segment_ids)
    before = rundown_segment_ids(session, broadcast.id)
    if not confirm_aired:
        added = [sid for sid in segment_ids if sid not in before]
        aired = aired_elsewhere(session, broadcast=broadcast, segment_ids=added)
        if aired:
            station = session.get_one(Station, broadcast.station_id)
            tz = station_zone(station)
            where = "; ".join(
                f"segment {sid} aired in "
                + ", ".join(f"broadcast {b.id} ({describe_local(b.starts_at, tz)})" for b in bs)
                for sid, bs in aired.items()
            )
            raise AiredElsewhere(
                f"{where}: send \"confirm_aired\": true to place it here again",
                aired={sid: [b.id for b in bs] for sid, bs in aired.items()},
            )
    session.execute(delete(RundownItem).where(RundownItem.broadcast_id == broadcast.id))
    session.add_all(
        RundownItem(broadcast_id=broadcast.id, position=i, segment_id=sid)
        for i, sid in enumerate(segment_ids)
    )
    if list(segment_ids) != before:
        # The old master no longer matches; the broadcast leaves the playlists until reassembled.
        broadcast.status = BroadcastStatus.planned.value
        broadcast.master_sha256 = None
        broadcast.master_duration_ms = None
        broadcast.master_key = None
        broadcast.cue_sheet = None
        broadcast.assembled_at = None
    broadcast.rundown_set_by_id = actor.id if actor else None
    flush_versioned(session, f"broadcast {broadcast.id}")
    signals.playlist_changed(session, broadcast.station_id, broadcast.village_id)
    audit.record(
        session,
        actor=actor,
        action="broadcast.rundown",
        entity="broadcast",
        entity_id=broadcast.id,
        before={"segment_ids": before},
        after={"segment_ids": list(segment_ids)},
    )
    return broadcast


@dataclass(frozen=True)
class PlannedItem:
    kind: str  # intro, segment, outro
    label: str
    segment_id: int | None
    sha256: str | None
    duration_ms: int
    path: Path | None = None
    standard_key: str | None = None  # the playout standard its audio was made to


def window_problem(
    total_ms: int, window: tuple[int, int], items: Sequence[PlannedItem], gap_ms: int
) -> str | None:
    """None inside the window; else how far short or over, and what would fix it."""
    low, high = window
    if low <= total_ms <= high:
        return None
    if total_ms < low:
        short = low - total_ms
        return (
            f"the rundown runs {describe_ms(total_ms)}, {short / 1000:.1f} s short of the "
            f"{describe_ms(low)} minimum: add at least {short / 1000:.1f} s of approved segments"
        )
    over = total_ms - high
    segments = [i for i in items if i.kind == "segment"]
    # Dropping a segment also drops the gap before it.
    droppable = [
        i
        for i in segments
        if low <= total_ms - i.duration_ms - (gap_ms if len(segments) > 1 else 0) <= high
    ]
    hint = (
        "dropping "
        + " or ".join(f"segment {i.segment_id} ({i.duration_ms / 1000:.1f} s)" for i in droppable)
        + " would fit"
        if droppable
        else f"shorten or drop segments by at least {over / 1000:.1f} s"
    )
    return (
        f"the rundown runs {describe_ms(total_ms, round_up=True)}, {over / 1000:.1f} s over the "
        f"{describe_ms(high)} maximum: {hint}"
    )


def segment_items(session: Session, broadcast_id: int) -> list[PlannedItem]:
    """The rundown's segments with their audio, in order."""
    rows = session.execute(
        select(
            RundownItem.segment_id,
            Segment.title,
            AudioAsset.sha256,
            AudioAsset.duration_ms,
            AudioAsset.standard_key,
        )
        .join(Segment, Segment.id == RundownItem.segment_id)
        .join(AudioAsset, AudioAsset.id == Segment.audio_id, isouter=True)
        .where(RundownItem.broadcast_id == broadcast_id)
        .order_by(RundownItem.position)
    )
    return [
        PlannedItem("segment", title, sid, sha, dur or 0, standard_key=standard)
        for sid, title, sha, dur, standard in rows
    ]
