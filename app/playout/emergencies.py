"""Emergencies: an approved segment on air at once on every device in scope.

Devices poll for active emergencies every few seconds; like the playlist, the poll is ONE
statement that finds the device by its token hash and its station's active emergencies
(see polldb). Which devices an emergency plays on is scope.carries_emergency. An
emergency stays active for its audio plus EMERGENCY_TAIL, at least EMERGENCY_MIN_LIFETIME,
or until it is cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Executable, Select, Table, and_, bindparam, case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.audio.models import AudioAsset
from app.audit import service as audit
from app.db import get_engine
from app.devices.models import Device
from app.devices.service import (
    DEVICE_COLUMNS,
    N_DEVICE_COLUMNS,
    DeviceState,
    Telemetry,
    device_from_row,
)
from app.errors import Invalid, NotFound
from app.playout import signals
from app.playout.models import Emergency, EmergencyDelivery, LiveSession
from app.playout.polldb import poll_execute, touch_device
from app.playout.schemas import DeliveryOut, EmergencyDetail, EmergencyOut
from app.playout.scope import carries_emergency
from app.segments.models import Segment, SegmentStatus
from app.stations import service as stations
from app.stations.models import Station, Village
from app.stations.network import local_today, network_on
from app.urls import audio_url

# An emergency stays active for its audio plus this, and at least EMERGENCY_MIN_LIFETIME.
EMERGENCY_TAIL = timedelta(minutes=10)
EMERGENCY_MIN_LIFETIME = timedelta(minutes=30)


@dataclass(frozen=True)
class ActiveEmergency:
    id: int
    station_id: int
    village_ids: list[int] | None
    segment_id: int
    title: str
    sha256: str
    duration_ms: int
    created_at: datetime
    expires_at: datetime


@lru_cache(maxsize=1)
def _emergency_statement() -> Select[Any]:
    return (
        select(
            *DEVICE_COLUMNS,
            Emergency.id,
            Emergency.village_ids,
            Emergency.network,
            Emergency.segment_id,
            Segment.title,
            Emergency.audio_sha256,
            Emergency.duration_ms,
            Emergency.created_at,
            Emergency.expires_at,
            LiveSession.id,
            LiveSession.title,
            LiveSession.priority,
            LiveSession.village_ids,
            LiveSession.network,
            LiveSession.mount,
            LiveSession.created_at,
        )
        .select_from(Device)
        .join(Station, Station.id == Device.station_id)
        .outerjoin(
            Emergency,
            and_(
                Emergency.station_id == Device.station_id,
                Emergency.cancelled_at.is_(None),
                Emergency.expires_at > bindparam("now"),
            ),
        )
        .outerjoin(Segment, Segment.id == Emergency.segment_id)
        # At most one open live session per station: it adds no rows.
        .outerjoin(
            LiveSession,
            and_(LiveSession.station_id == Device.station_id, LiveSession.ended_at.is_(None)),
        )
        .where(Device.token_hash == bindparam("token_hash"))
        .order_by(Emergency.created_at.desc(), Emergency.id.desc())
    )


@dataclass(frozen=True)
class ActiveLive:
    """An open live session in a device's scope (app.playout.live)."""

    id: int
    title: str
    priority: str
    mount: str
    created_at: datetime


def device_emergencies(*, token_hash: str) -> tuple[DeviceState, list[ActiveEmergency]]:
    """The device and the active emergencies in its scope, newest first, in one query."""
    device, found, _live = device_alerts(token_hash=token_hash)
    return device, found


def device_alerts(
    *, token_hash: str
) -> tuple[DeviceState, list[ActiveEmergency], list[ActiveLive]]:
    """The device, the active emergencies in its scope (newest first) and its station's open
    live session if the device is in its scope, in one query."""
    rows = poll_execute(_emergency_statement(), {"token_hash": token_hash, "now": clock.now()})
    device = device_from_row(rows[0] if rows else None)
    found = []
    lives: dict[int, ActiveLive] = {}
    for row in rows:
        tail = row[N_DEVICE_COLUMNS:]
        e_id, villages, network, seg_id, title, sha, dur, created, expires = tail[:9]
        l_id, l_title, l_priority, l_villages, l_network, l_mount, l_created = tail[9:]
        if l_id is not None and carries_emergency(l_villages, l_network, device.village_id):
            lives[l_id] = ActiveLive(l_id, l_title, l_priority, l_mount, l_created.astimezone(UTC))
        if e_id is None or not carries_emergency(villages, network, device.village_id):
            continue
        found.append(
            ActiveEmergency(
                e_id,
                device.station_id,
                villages,
                seg_id,
                title,
                sha,
                dur,
                created.astimezone(UTC),
                expires.astimezone(UTC),
            )
        )
    return device, found, list(lives.values())


def pull_emergencies(
    *, token_hash: str, telemetry: Telemetry
) -> tuple[DeviceState, list[ActiveEmergency], list[ActiveLive]]:
    """A device polls for emergencies and live sessions: read them, and note that it was
    seen when due."""
    device, found, lives = device_alerts(token_hash=token_hash)
    touch_device(device, telemetry)
    return device, found, lives


DELIVERIES = cast(Table, EmergencyDelivery.__table__)


@lru_cache(maxsize=16)
def _pickup_statement(dialect: str, count: int) -> Executable:
    """INSERT the pickups of `count` emergencies by one device; already recorded: nothing."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    rows: list[dict[str, Any]] = [
        {
            "emergency_id": bindparam(f"e{i}"),
            "device_id": bindparam("device"),
            "picked_up_at": bindparam("at"),
        }
        for i in range(count)
    ]
    # The table, not the class: an ORM insert run with parameters is a bulk insert of them.
    return insert(DELIVERIES).values(rows).on_conflict_do_nothing()


def record_pickups(*, device_id: int, emergency_ids: Sequence[int]) -> None:
    """Note that a poll handed these emergencies to the device (the first time counts).

    Called only when a poll answers 200 with active emergencies: a device that already has
    them polls with their ETag and gets a 304, which writes nothing. One statement.
    """
    ids = sorted(set(emergency_ids))[:50]  # a station has a handful at most
    if not ids:
        return
    params: dict[str, Any] = {f"e{i}": eid for i, eid in enumerate(ids)}
    params.update(device=device_id, at=clock.now())
    statement = _pickup_statement(get_engine().dialect.name, len(ids))
    poll_execute(statement, params, fetch=False)


def record_starts(session: Session, *, device_id: int, started: dict[int, datetime]) -> None:
    """As-run intake: the device started these emergencies (id → its earliest start)."""
    if not started:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(DELIVERIES).values(
        [
            {"emergency_id": eid, "device_id": device_id, "started_at": at}
            for eid, at in sorted(started.items())
        ]
    )
    current = DELIVERIES.c.started_at
    # The earliest start wins, whatever order the as-run batches arrive in.
    stmt = stmt.on_conflict_do_update(
        index_elements=["emergency_id", "device_id"],
        set_={
            "started_at": case(
                (current.is_(None), stmt.excluded.started_at),
                (stmt.excluded.started_at < current, stmt.excluded.started_at),
                else_=current,
            )
        },
    )
    session.execute(stmt)


def deliveries(session: Session, *, emergency: Emergency) -> list[DeliveryOut]:
    """Every device in the emergency's scope, with its pickup and start (None: not yet)."""
    found = {
        d.device_id: d
        for d in session.scalars(
            select(EmergencyDelivery).where(EmergencyDelivery.emergency_id == emergency.id)
        )
    }
    devices = session.scalars(
        select(Device).where(Device.station_id == emergency.station_id).order_by(Device.id)
    )
    out = []
    for device in devices:
        delivery = found.get(device.id)
        in_scope = device.is_active and carries_emergency(
            emergency.village_ids, emergency.network, device.village_id
        )
        if delivery is None and not in_scope:
            continue
        out.append(
            DeliveryOut(
                device_id=device.id,
                device_name=device.name,
                village_id=device.village_id,
                picked_up_at=delivery.picked_up_at if delivery else None,
                started_at=delivery.started_at if delivery else None,
            )
        )
    return out


def emergency_detail(session: Session, emergency: Emergency, *, base_url: str) -> EmergencyDetail:
    """The API shape of one emergency with how it reached each device in scope."""
    return EmergencyDetail(
        **emergency_out(session, emergency, base_url=base_url).model_dump(),
        deliveries=deliveries(session, emergency=emergency),
    )


def active_emergency_audio(
    session: Session, *, station_id: int, village_id: int | None, sha256: str
) -> bool:
    """Whether sha256 is the audio of an emergency on air now for a device at that place."""
    rows = session.execute(
        select(Emergency.village_ids, Emergency.network).where(
            Emergency.audio_sha256 == sha256,
            Emergency.station_id == station_id,
            Emergency.cancelled_at.is_(None),
            Emergency.expires_at > clock.now(),
        )
    )
    return any(carries_emergency(villages, network, village_id) for villages, network in rows)


def emergency_document(e: ActiveEmergency, *, base_url: str) -> dict[str, Any]:
    """One active emergency as JSON, the same shape as the staff endpoints give."""
    return EmergencyOut(
        id=e.id,
        station_id=e.station_id,
        village_ids=e.village_ids,
        segment_id=e.segment_id,
        title=e.title,
        sha256=e.sha256,
        audio_url=audio_url(base_url, e.sha256),
        duration_ms=e.duration_ms,
        created_at=e.created_at,
        expires_at=e.expires_at,
    ).model_dump(mode="json")


def emergency_lifetime(duration_ms: int) -> timedelta:
    """How long an emergency stays active: its audio plus a tail, and at least half an hour."""
    return max(timedelta(milliseconds=duration_ms) + EMERGENCY_TAIL, EMERGENCY_MIN_LIFETIME)


def create_emergency(
    session: Session,
    *,
    station_id: int,
    segment_id: int,
    village_ids: Sequence[int] | None = None,
    actor: User | None = None,
    repeat: int = 1,
) -> Emergency:
    """An emergency announcement from an approved segment with audio; active at once."""
    station = stations.get_station(session, station_id, user=actor)
    segment = session.get(Segment, segment_id)
    if segment is None or segment.station_id != station.id:
        raise NotFound(f"segment {segment_id} does not exist in station {station.id}")
    if segment.status != SegmentStatus.approved.value:
        raise Invalid(f"segment {segment_id} is {segment.status}: only approved segments go on air")
    if segment.audio_id is None:
        raise Invalid(f"segment {segment_id} has no audio yet")
    asset = session.get_one(AudioAsset, segment.audio_id)
    villages: list[int] | None = None
    if village_ids is not None:
        villages = sorted(set(village_ids))
        found = set(
            session.scalars(
                select(Village.id).where(Village.station_id == station.id, Village.id.in_(villages))
            )
        )
        missing = [v for v in villages if v not in found]
        if missing:
            raise Invalid(
                f"unknown village id(s) for station {station.id}: {', '.join(map(str, missing))}"
            )
    now = clock.now()
    emergency = Emergency(
        station_id=station.id,
        segment_id=segment.id,
        village_ids=villages,
        # Who hears it follows the station's kind today (app.playout.scope).
        network=network_on(station, local_today(station, now)),
        audio_sha256=asset.sha256,
        duration_ms=asset.duration_ms,
        created_by_id=actor.id if actor else None,
        created_at=now,
        expires_at=now + emergency_lifetime(asset.duration_ms),
        repeat=repeat,
    )
    session.add(emergency)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="emergency.create",
        entity="emergency",
        entity_id=emergency.id,
        after=_emergency_snapshot(emergency),
    )
    signals.alert_changed(session, emergency.station_id)
    return emergency


def _emergency_snapshot(e: Emergency) -> dict[str, Any]:
    return {
        "station_id": e.station_id,
        "segment_id": e.segment_id,
        "village_ids": e.village_ids,
        "network": e.network,
        "audio_sha256": e.audio_sha256,
        "expires_at": e.expires_at.isoformat(),
        "cancelled_at": e.cancelled_at.isoformat() if e.cancelled_at else None,
    }


def get_emergency(
    session: Session, emergency_id: int, *, user: User | None = None, for_update: bool = False
) -> Emergency:
    """The emergency, or 404 (also when it belongs to a station the user cannot see)."""
    return stations.get_in_station(
        session, Emergency, emergency_id, what="emergency", user=user, for_update=for_update
    )


def list_query(
    *, user: User, station_id: int | None = None, active: bool | None = None
) -> Select[tuple[Emergency]]:
    """Emergencies the user may see, newest first; active: not cancelled nor expired."""
    stmt = select(Emergency).order_by(Emergency.created_at.desc(), Emergency.id.desc())
    stmt = stations.scope_to_user(stmt, Emergency.station_id, user)
    if station_id is not None:
        stmt = stmt.where(Emergency.station_id == station_id)
    if active is not None:
        live = and_(Emergency.cancelled_at.is_(None), Emergency.expires_at > clock.now())
        stmt = stmt.where(live if active else ~live)
    return stmt


def cancel_emergency(
    session: Session, *, emergency: Emergency, actor: User | None = None
) -> Emergency:
    """Stop an emergency: it leaves every device's poll. Cancelling twice changes nothing."""
    if emergency.cancelled_at is None:
        before = _emergency_snapshot(emergency)
        emergency.cancelled_at = clock.now()
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="emergency.cancel",
            entity="emergency",
            entity_id=emergency.id,
            before=before,
            after=_emergency_snapshot(emergency),
        )
        signals.alert_changed(session, emergency.station_id)
    return emergency


def emergency_out(session: Session, emergency: Emergency, *, base_url: str) -> EmergencyOut:
    """The API shape of an emergency."""
    return emergencies_out(session, [emergency], base_url=base_url)[0]


def emergencies_out(
    session: Session, emergencies: Sequence[Emergency], *, base_url: str
) -> list[EmergencyOut]:
    """API shapes of emergencies, with their segments' titles in one query."""
    ids = {e.segment_id for e in emergencies}
    titles = {
        sid: title
        for sid, title in session.execute(
            select(Segment.id, Segment.title).where(Segment.id.in_(ids))
        )
    }
    return [
        EmergencyOut(
            id=e.id,
            station_id=e.station_id,
            village_ids=e.village_ids,
            segment_id=e.segment_id,
            title=titles.get(e.segment_id, ""),
            sha256=e.audio_sha256,
            audio_url=audio_url(base_url, e.audio_sha256),
            duration_ms=e.duration_ms,
            created_at=e.created_at,
            expires_at=e.expires_at,
            repeat=e.repeat,
            cancelled_at=e.cancelled_at,
        )
        for e in emergencies
    ]
