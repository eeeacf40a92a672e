"""Playout devices: registration, token checks, and the health they report.

A device authenticates with a bearer token that starts with DEVICE_TOKEN_PREFIX; only the
token's hash is stored. The polls read the calling device as a DeviceState (plain values
read in the same statement as the poll's rows) and write its health columns only when
they are stale (telemetry_changes), so almost every poll is read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Executable, Select, bindparam, func, select, update
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import User
from app.accounts.security import DEVICE_TOKEN_PREFIX, hash_device_token, new_device_token
from app.audit import service as audit
from app.db import unit_of_work
from app.devices.models import Device
from app.errors import Forbidden, NotFound, Unauthorized
from app.playout import signals
from app.push import logins as push_logins
from app.stations.models import Station, Village

# A device's last_seen_at / last_playlist_at are written at most this often: the polls
# stay read-only for almost every request ("online" needs minutes, not seconds).
SEEN_WRITE_INTERVAL = timedelta(seconds=30)
ONLINE_WITHIN = timedelta(minutes=5)


# --- registration -------------------------------------------------------------------------


def create_device(
    session: Session,
    *,
    name: str,
    station_id: int,
    village_id: int | None = None,
    actor: User | None = None,
) -> tuple[Device, str]:
    """A playout device and its token (returned once, stored hashed)."""
    if session.get(Station, station_id) is None:
        raise NotFound(f"station {station_id} does not exist")
    if village_id is not None:
        village = session.get(Village, village_id)
        if village is None or village.station_id != station_id:
            raise NotFound(f"village {village_id} does not exist in station {station_id}")
    token = new_device_token()
    device = Device(
        name=name, station_id=station_id, village_id=village_id, token_hash=hash_device_token(token)
    )
    session.add(device)
    session.flush()
    push_logins.issued(session, device, token)
    audit.record(
        session,
        actor=actor,
        action="device.create",
        entity="device",
        entity_id=device.id,
        after={"name": name, "station_id": station_id, "village_id": village_id},
    )
    return device, token


def get_device(session: Session, device_id: int, *, for_update: bool = False) -> Device:
    """The device; 404 when there is none."""
    stmt = select(Device).where(Device.id == device_id)
    if for_update:
        stmt = stmt.with_for_update()
    device = session.scalar(stmt)
    if device is None:
        raise NotFound(f"device {device_id} does not exist")
    return device


def _end_token(session: Session, *, device: Device, actor: User | None, action: str) -> None:
    """The one place a device token stops working (revoked, or replaced by a new one): its
    hash is replaced by that of a random token nobody is shown, so the old token answers
    401 from the next request on, and no later change (enabling the device again) can bring
    it back. Devices are told through app.playout.signals (the push broker drops its login)."""
    device.token_hash = hash_device_token(new_device_token())
    session.flush()
    signals.token_ended(session, device.id)
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="device",
        entity_id=device.id,
        after={"name": device.name, "is_active": device.is_active},
    )


def revoke_device(session: Session, *, device: Device, actor: User | None = None) -> Device:
    """Revoke the device's token and disable it (a stolen or retired playout PC): its token
    answers 401 at once. ``issue_token`` gives it a new one."""
    device.is_active = False
    _end_token(session, device=device, actor=actor, action="device.revoke")
    return device


def issue_token(session: Session, *, device: Device, actor: User | None = None) -> str:
    """A new token for the device (returned once, stored hashed); the old one is dead at
    once. A revoked device is enabled again with it."""
    device.is_active = True
    _end_token(session, device=device, actor=actor, action="device.token")
    token = new_device_token()
    device.token_hash = hash_device_token(token)
    session.flush()
    push_logins.issued(session, device, token)
    return token


def list_devices(session: Session, *, station_id: int | None = None) -> list[Device]:
    """Devices in id order, of one station or all."""
    stmt = select(Device).order_by(Device.id)
    if station_id is not None:
        stmt = stmt.where(Device.station_id == station_id)
    return list(session.scalars(stmt))


def device_counts(now: datetime | None = None) -> tuple[int, int]:
    """(online, active): active devices seen within ONLINE_WITHIN, and all active devices."""
    since = (now or clock.now()) - ONLINE_WITHIN
    with unit_of_work(write=False) as session:
        online = session.scalar(
            select(func.count(Device.id)).where(Device.is_active, Device.last_seen_at >= since)
        )
        active = session.scalar(select(func.count(Device.id)).where(Device.is_active))
    return online or 0, active or 0


def is_online(last_seen_at: datetime | None, now: datetime | None = None) -> bool:
    """Seen within ONLINE_WITHIN (by loaxa's clock)."""
    if last_seen_at is None:
        return False
    return (now or clock.now()) - last_seen_at <= ONLINE_WITHIN


# --- the calling device -------------------------------------------------------------------


def device_token_hash(token: str | None) -> str:
    """The stored hash of a device token; 401 without one, 403 for a staff token."""
    if not token:
        raise Unauthorized("not authenticated: send 'Authorization: Bearer <device token>'")
    if not token.startswith(DEVICE_TOKEN_PREFIX):
        raise Forbidden("this endpoint is for playout devices")
    return hash_device_token(token)


@dataclass(frozen=True)
class DeviceState:
    """The calling device as the hot paths read it (plain values, no ORM object)."""

    id: int
    station_id: int
    village_id: int | None
    timezone: str
    last_seen_at: datetime | None
    last_playlist_at: datetime | None
    agent_version: str | None
    free_disk_bytes: int | None
    last_played_at: datetime | None
    push_state: str | None = None


# What a poll statement selects first (joined to Station); device_from_row reads them back.
DEVICE_COLUMNS = (
    Device.id,
    Device.station_id,
    Device.village_id,
    Device.is_active,
    Station.timezone,
    Device.last_seen_at,
    Device.last_playlist_at,
    Device.agent_version,
    Device.free_disk_bytes,
    Device.last_played_at,
    Device.push_state,
)
N_DEVICE_COLUMNS = len(DEVICE_COLUMNS)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def device_from_row(row: Sequence[Any] | None) -> DeviceState:
    """The device from the first DEVICE_COLUMNS of a row; 401 for none or a disabled one."""
    if row is None or not row[3]:
        raise Unauthorized("unknown or disabled device token")
    return DeviceState(
        id=row[0],
        station_id=row[1],
        village_id=row[2],
        timezone=row[4],
        last_seen_at=_utc(row[5]),
        last_playlist_at=_utc(row[6]),
        agent_version=row[7],
        free_disk_bytes=row[8],
        last_played_at=_utc(row[9]),
        push_state=row[10],
    )


@lru_cache(maxsize=1)
def _device_statement() -> Select[Any]:
    return (
        select(*DEVICE_COLUMNS)
        .join(Station, Station.id == Device.station_id)
        .where(Device.token_hash == bindparam("token_hash"))
    )


def device_by_token(session: Session, *, token_hash: str) -> DeviceState:
    """The calling device; 401 for an unknown or disabled token."""
    row = session.execute(_device_statement(), {"token_hash": token_hash}).first()
    return device_from_row(row)


# --- health -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Telemetry:
    """What an agent says about itself in X-Loaxa-* headers."""

    agent_version: str | None = None
    free_disk_bytes: int | None = None
    push_state: str | None = None  # connected, polling, off (X-Loaxa-Push)


def parse_telemetry(
    agent_version: str | None, free_disk_bytes: str | None, push: str | None = None
) -> Telemetry:
    """Telemetry from header values; malformed values are ignored (playout must not fail)."""
    version = agent_version.strip()[:40] if agent_version and agent_version.strip() else None
    disk: int | None = None
    if free_disk_bytes is not None:
        raw = free_disk_bytes.strip()
        if raw.isdigit() and len(raw) <= 18:
            disk = int(raw)
    from app.push.status import parse_state

    return Telemetry(agent_version=version, free_disk_bytes=disk, push_state=parse_state(push))


def telemetry_changes(
    device: DeviceState, telemetry: Telemetry, *, now: datetime, pulled_playlist: bool = False
) -> dict[str, Any]:
    """The device columns worth writing now; empty for almost every poll."""
    values: dict[str, Any] = {}
    if device.last_seen_at is None or now - device.last_seen_at >= SEEN_WRITE_INTERVAL:
        values["last_seen_at"] = now
    if pulled_playlist and (
        device.last_playlist_at is None or now - device.last_playlist_at >= SEEN_WRITE_INTERVAL
    ):
        values["last_playlist_at"] = now
    if telemetry.agent_version is not None and telemetry.agent_version != device.agent_version:
        values["agent_version"] = telemetry.agent_version
    if telemetry.push_state is not None and telemetry.push_state != device.push_state:
        values["push_state"] = telemetry.push_state
    if not values:
        return values
    # Free disk space drifts on every request: it rides along with a write that happens anyway.
    if telemetry.free_disk_bytes is not None:
        values["free_disk_bytes"] = telemetry.free_disk_bytes
    values["last_seen_at"] = now
    return values


def write_telemetry(session: Session, *, device_id: int, values: dict[str, Any]) -> None:
    """Record the device's health columns in one UPDATE (inside a unit of work)."""
    if values:
        session.execute(
            update(Device)
            .where(Device.id == device_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


@lru_cache(maxsize=32)
def telemetry_statement(columns: frozenset[str]) -> Executable:
    """The poll's health write of these columns, with bind parameters (built once)."""
    # SKIP LOCKED (PostgreSQL; SQLite ignores it): when an as-run upload of the same device
    # holds its row, skip this write rather than wait for it. It is only health data.
    unlocked = (
        select(Device.id)
        .where(Device.id == bindparam("device_id"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(Device)
        .where(Device.id.in_(unlocked.scalar_subquery()))
        .values({name: bindparam(name) for name in sorted(columns)})
    )
