"""Playout: device playlists, as-run logs, emergencies and device health.

The playlist and emergency polls are the hot paths (every playout PC calls them, the
emergency poll every few seconds): each is ONE indexed query that finds the device by its
token hash and, in the same round trip, its playlist rows or active emergencies. Nothing is
cached between requests, so a cancelled broadcast or a changed rundown leaves the playlist
at once; the ETag is a hash of the body, so an unchanged playlist costs a 304.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import (
    Engine,
    Executable,
    Select,
    and_,
    bindparam,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from starlette.concurrency import run_in_threadpool

from app import clock
from app.accounts.models import User
from app.accounts.security import DEVICE_TOKEN_PREFIX, hash_device_token
from app.audio.models import AudioAsset
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.db import get_engine, make_engine, unit_of_work
from app.errors import Forbidden, Invalid, NotFound, Unauthorized, describe_validation_errors
from app.playout.models import AsRunEvent, Emergency
from app.playout.schemas import AsRunEventIn, AsRunRejected, AsRunResult, EmergencyOut
from app.schedule.models import Broadcast, BroadcastStatus
from app.segments.models import Segment, SegmentStatus
from app.stations import service as stations
from app.stations.models import Device, Programme, Station, Village

log = logging.getLogger(__name__)

# A device's last_seen_at / last_playlist_at are written at most this often: the polls
# stay read-only for almost every request ("online" needs minutes, not seconds).
SEEN_WRITE_INTERVAL = timedelta(seconds=30)
ONLINE_WITHIN = timedelta(minutes=5)
# As-run plausibility: clocks of playout PCs drift a little; audio may be stretched a little.
MAX_FUTURE = timedelta(minutes=5)
MAX_OVERRUN = timedelta(seconds=10)
MAX_BATCH = 1000
# An emergency stays active for its audio plus this, and at least EMERGENCY_MIN_LIFETIME.
EMERGENCY_TAIL = timedelta(minutes=10)
EMERGENCY_MIN_LIFETIME = timedelta(minutes=30)

PLAYABLE = (
    BroadcastStatus.assembled.value,
    BroadcastStatus.aired.value,
    BroadcastStatus.missed.value,
)
AIRABLE = (BroadcastStatus.assembled.value, BroadcastStatus.missed.value)
M3U_TYPES = ("audio/x-mpegurl", "audio/mpegurl", "application/vnd.apple.mpegurl")


# --- database access for the polls --------------------------------------------------------

Row = Sequence[Any]
T = TypeVar("T")


@lru_cache(maxsize=4)
def _poll_engine(engine: Engine) -> Engine | None:
    """For PostgreSQL, a second pool beside the application's engine; None elsewhere."""
    # Each poll is one statement, so autocommit makes it one round trip (no BEGIN/COMMIT)
    # and psycopg's prepared statements survive (a ROLLBACK drops them, and planning a poll
    # costs more than running it). No pre-ping: a dead connection fails one statement, is
    # replaced, and the statement is tried once more. The only writes here are device
    # health columns, so their commits need not wait for the disk.
    if engine.dialect.name != "postgresql":
        return None
    return make_engine(
        engine.url.render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=False,
        pool_reset_on_return=None,  # autocommit: there is never a transaction to end
        pool_size=4,
        max_overflow=8,
        # Polls run on the event loop: never let one wait long for the server.
        connect_args={
            "options": "-c synchronous_commit=off -c statement_timeout=5000",
            "connect_timeout": 5,
        },
    )


def _poll_bind() -> Engine | None:
    return _poll_engine(get_engine())


@lru_cache(maxsize=64)
def _sql(statement: Executable, dialect: Dialect) -> str:
    assert isinstance(statement, ClauseElement)
    return str(statement.compile(dialect=dialect))


def poll_execute(statement: Executable, params: dict[str, Any], *, fetch: bool = True) -> list[Row]:
    """Run one poll statement (built once, with named bind parameters); rows as tuples.

    On PostgreSQL the statement, compiled once, goes straight to psycopg on a pooled
    autocommit connection: SQLAlchemy's per-execution work costs more CPU than the query
    itself, and these run thousands of times a second. Elsewhere (SQLite) it runs in a
    unit of work like any other statement. Datetimes in the rows may be in any zone.
    """
    engine = _poll_bind()
    if engine is None:
        with unit_of_work(write=not fetch) as session:
            result = session.execute(statement, params)
            return [tuple(r) for r in result] if fetch else []
    sql = _sql(statement, engine.dialect)
    dbapi = engine.dialect.loaded_dbapi
    for attempt in (1, 2):
        conn = engine.raw_connection()  # pooled; close() hands it back
        try:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            rows = list(cursor.fetchall()) if fetch else []
            cursor.close()
            return rows
        except (dbapi.OperationalError, dbapi.InterfaceError):
            # The connection died (a server restart): drop it and try a fresh one.
            conn.invalidate()
            if attempt == 2:
                raise
        finally:
            conn.close()
    raise AssertionError("unreachable")  # pragma: no cover


async def run_db(fn: Callable[[], T]) -> T:
    """Run a poll's database work from an async endpoint.

    PostgreSQL: inline. The work is one or two short autocommit statements that wait on
    no lock (see touch_device), and a hop to the thread pool costs more CPU than the
    round trip it would free the event loop for. SQLite: in the thread pool, since a
    write there may wait for the database's single write lock.
    """
    if _poll_bind() is not None:
        return fn()
    return await run_in_threadpool(fn)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


# --- the calling device -------------------------------------------------------------------


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


@dataclass(frozen=True)
class Telemetry:
    """What an agent says about itself in X-Loaxa-* headers."""

    agent_version: str | None = None
    free_disk_bytes: int | None = None


def parse_telemetry(agent_version: str | None, free_disk_bytes: str | None) -> Telemetry:
    """Telemetry from header values; malformed values are ignored (playout must not fail)."""
    version = agent_version.strip()[:40] if agent_version and agent_version.strip() else None
    disk: int | None = None
    if free_disk_bytes is not None:
        raw = free_disk_bytes.strip()
        if raw.isdigit() and len(raw) <= 18:
            disk = int(raw)
    return Telemetry(agent_version=version, free_disk_bytes=disk)


def device_token_hash(token: str | None) -> str:
    """The stored hash of a device token; 401/403 as the device dependency answers."""
    if not token:
        raise Unauthorized("not authenticated: send 'Authorization: Bearer <device token>'")
    if not token.startswith(DEVICE_TOKEN_PREFIX):
        raise Forbidden("this endpoint is for playout devices")
    return hash_device_token(token)


_DEVICE_COLUMNS = (
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
)
_N_DEVICE = len(_DEVICE_COLUMNS)


def _device_from_row(row: Sequence[Any] | None) -> DeviceState:
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
    )


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
def _telemetry_statement(columns: frozenset[str]) -> Executable:
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


def touch_device(
    device: DeviceState, telemetry: Telemetry, *, pulled_playlist: bool = False
) -> None:
    """After a poll: write the device's health columns when they are stale (rarely)."""
    values = telemetry_changes(device, telemetry, now=clock.now(), pulled_playlist=pulled_playlist)
    if values:
        poll_execute(
            _telemetry_statement(frozenset(values)), {**values, "device_id": device.id}, fetch=False
        )


def is_online(last_seen_at: datetime | None, now: datetime | None = None) -> bool:
    """Seen within ONLINE_WITHIN (by loaxa's clock)."""
    if last_seen_at is None:
        return False
    return (now or clock.now()) - last_seen_at <= ONLINE_WITHIN


# --- playlists ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaylistEntry:
    broadcast_id: int
    programme: str
    title: str
    priority: str
    starts_at: datetime
    duration_ms: int
    sha256: str


@dataclass(frozen=True)
class Playlist:
    device: DeviceState
    day: date
    items: list[PlaylistEntry]


@lru_cache(maxsize=1)
def _playlist_statement() -> Select[Any]:
    # Built once; executed with bind parameters so its compiled form is reused too.
    return (
        select(
            *_DEVICE_COLUMNS,
            Broadcast.id,
            Broadcast.starts_at,
            Broadcast.priority,
            Broadcast.master_sha256,
            Broadcast.master_duration_ms,
            Programme.code,
            Programme.name,
        )
        .select_from(Device)
        .join(Station, Station.id == Device.station_id)
        .outerjoin(
            Broadcast,
            and_(
                Broadcast.station_id == Device.station_id,
                # A station PC plays the station's programmes; a village PC its village's.
                Broadcast.village_id.is_not_distinct_from(Device.village_id),
                Broadcast.starts_at >= bindparam("lo"),
                Broadcast.starts_at < bindparam("hi"),
                # Inline constants: the statement is compiled once to plain SQL.
                Broadcast.status.in_([literal_column(f"'{s}'") for s in PLAYABLE]),
                Broadcast.master_sha256.is_not(None),
                Broadcast.master_duration_ms.is_not(None),
            ),
        )
        .outerjoin(Programme, Programme.id == Broadcast.programme_id)
        .where(Device.token_hash == bindparam("token_hash"))
        .order_by(Broadcast.starts_at, Broadcast.id)
    )


def _candidate_window(day: date | None, now: datetime) -> tuple[datetime, datetime]:
    # The station's zone is read in the same query as the rows, so fetch a UTC window wide
    # enough for any zone (UTC-12 to UTC+14) and keep the local day's rows afterwards.
    first, last = (
        (day, day)
        if day is not None
        else (now.date() - timedelta(days=1), now.date() + timedelta(days=1))
    )
    lo = datetime.combine(first - timedelta(days=1), time(0), tzinfo=UTC)
    hi = datetime.combine(last + timedelta(days=2), time(0), tzinfo=UTC)
    return lo, hi


@lru_cache(maxsize=1)
def _device_statement() -> Select[Any]:
    return (
        select(*_DEVICE_COLUMNS)
        .join(Station, Station.id == Device.station_id)
        .where(Device.token_hash == bindparam("token_hash"))
    )


def device_by_token(session: Session, *, token_hash: str) -> DeviceState:
    """The calling device; 401 for an unknown or disabled token."""
    row = session.execute(_device_statement(), {"token_hash": token_hash}).first()
    return _device_from_row(row)


def device_playlist(*, token_hash: str, day: date | None = None) -> Playlist:
    """The device's playlist for a local day (default: its station's today), in one query."""
    now = clock.now()
    lo, hi = _candidate_window(day, now)
    rows = poll_execute(_playlist_statement(), {"token_hash": token_hash, "lo": lo, "hi": hi})
    device = _device_from_row(rows[0] if rows else None)
    tz = ZoneInfo(device.timezone)
    if day is None:
        day = now.astimezone(tz).date()
    items = []
    for row in rows:
        b_id, starts_at, priority, sha, dur, code, name = row[_N_DEVICE:]
        if b_id is None or starts_at.astimezone(tz).date() != day:
            continue
        items.append(PlaylistEntry(b_id, code, name, priority, starts_at.astimezone(UTC), dur, sha))
    return Playlist(device=device, day=day, items=items)


def pull_playlist(*, token_hash: str, day: date | None, telemetry: Telemetry) -> Playlist:
    """A device pulls its playlist: read it, and note the pull when that is due."""
    playlist = device_playlist(token_hash=token_hash, day=day)
    touch_device(playlist.device, telemetry, pulled_playlist=True)
    return playlist


def audio_url(base_url: str, sha256: str) -> str:
    """The absolute download URL of a file in the audio store."""
    return f"{base_url.rstrip('/')}/api/v1/audio/{sha256}"


def playlist_document(playlist: Playlist, *, base_url: str) -> dict[str, Any]:
    """The playlist as the JSON the endpoint sends."""
    tz = ZoneInfo(playlist.device.timezone)
    return {
        "date": playlist.day.isoformat(),
        "device_id": playlist.device.id,
        "station_id": playlist.device.station_id,
        "village_id": playlist.device.village_id,
        "timezone": playlist.device.timezone,
        "items": [
            {
                "event_key": f"b{i.broadcast_id}",
                "broadcast_id": i.broadcast_id,
                "programme": i.programme,
                "title": i.title,
                "priority": i.priority,
                "starts_at": i.starts_at.isoformat(),
                "starts_at_local": i.starts_at.astimezone(tz).isoformat(),
                "ends_at": (i.starts_at + timedelta(milliseconds=i.duration_ms)).isoformat(),
                "duration_ms": i.duration_ms,
                "sha256": i.sha256,
                "audio_url": audio_url(base_url, i.sha256),
            }
            for i in playlist.items
        ],
    }


def render_json(document: Any) -> bytes:
    """Compact UTF-8 JSON (Vietnamese text as is, not \\u escapes)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render_m3u(playlist: Playlist, *, base_url: str) -> bytes:
    """Extended M3U8: #EXTINF with whole seconds and the title, then the absolute URL."""
    tz = ZoneInfo(playlist.device.timezone)
    lines = ["#EXTM3U", f"#PLAYLIST:loaxa {playlist.day.isoformat()}"]
    for i in playlist.items:
        title = " ".join(i.title.split())  # one line, whatever the title holds
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{i.starts_at.astimezone(tz).isoformat()}")
        lines.append(f"#EXTINF:{round(i.duration_ms / 1000)},{title}")
        lines.append(audio_url(base_url, i.sha256))
    return ("\n".join(lines) + "\n").encode("utf-8")


def strong_etag(body: bytes) -> str:
    """A strong ETag: the body's hash."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match semantics (weak comparison, lists, "*")."""
    if not if_none_match:
        return False
    tag = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


def wants_m3u(format_: str | None, accept: str | None) -> bool:
    """?format=m3u (or m3u8), else an Accept header naming an M3U type; ?format=json wins."""
    if format_ is not None:
        value = format_.strip().lower()
        if value in ("m3u", "m3u8"):
            return True
        if value == "json":
            return False
        raise Invalid(f"format: must be json or m3u, not {format_!r}")
    if not accept:
        return False
    return any(t in accept.lower() for t in M3U_TYPES)


def parse_day(value: str | None) -> date | None:
    """A YYYY-MM-DD query value; 422 naming the parameter otherwise."""
    if value is None or value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"date: must be a calendar date YYYY-MM-DD, not {value!r}") from None
    if not 2000 <= day.year <= 2100:
        raise Invalid(f"date: {value} is outside the years 2000 to 2100")
    return day


def publish_playlists(session: Session, *, day: date, station_ids: list[int] | None = None) -> int:
    """Count the playlists (station and village scopes) that have items on `day`.

    Playlists are computed live from the broadcasts on every request (one indexed query),
    so nothing needs storing for devices to see them, and every change shows at once. The
    scheduler calls this nightly to log what the devices will get; it is read-only and
    safe to run any number of times.
    """
    stmt = select(Station.id, Station.timezone)
    if station_ids is not None:
        stmt = stmt.where(Station.id.in_(station_ids))
    zones = {sid: ZoneInfo(tz) for sid, tz in session.execute(stmt)}
    if not zones:
        return 0
    lo, hi = _candidate_window(day, clock.now())
    rows = session.execute(
        select(Broadcast.station_id, Broadcast.village_id, Broadcast.starts_at).where(
            Broadcast.station_id.in_(list(zones)),
            Broadcast.starts_at >= lo,
            Broadcast.starts_at < hi,
            Broadcast.status.in_(PLAYABLE),
            Broadcast.master_sha256.is_not(None),
        )
    )
    scopes = {
        (sid, vid) for sid, vid, starts in rows if starts.astimezone(zones[sid]).date() == day
    }
    log.info("playlists for %s: %d scope(s) with items", day.isoformat(), len(scopes))
    return len(scopes)


# --- emergencies --------------------------------------------------------------------------


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


def covers(village_ids: list[int] | None, device_village_id: int | None) -> bool:
    """Whether an emergency for these villages plays on a device of this village (or station)."""
    return village_ids is None or device_village_id is None or device_village_id in village_ids


@lru_cache(maxsize=1)
def _emergency_statement() -> Select[Any]:
    return (
        select(
            *_DEVICE_COLUMNS,
            Emergency.id,
            Emergency.village_ids,
            Emergency.segment_id,
            Segment.title,
            Emergency.audio_sha256,
            Emergency.duration_ms,
            Emergency.created_at,
            Emergency.expires_at,
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
        .where(Device.token_hash == bindparam("token_hash"))
        .order_by(Emergency.created_at.desc(), Emergency.id.desc())
    )


def device_emergencies(*, token_hash: str) -> tuple[DeviceState, list[ActiveEmergency]]:
    """The device and the active emergencies in its scope, newest first, in one query."""
    rows = poll_execute(_emergency_statement(), {"token_hash": token_hash, "now": clock.now()})
    device = _device_from_row(rows[0] if rows else None)
    found = []
    for row in rows:
        e_id, villages, seg_id, title, sha, dur, created, expires = row[_N_DEVICE:]
        if e_id is None or not covers(villages, device.village_id):
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
    return device, found


def pull_emergencies(
    *, token_hash: str, telemetry: Telemetry
) -> tuple[DeviceState, list[ActiveEmergency]]:
    """A device polls for emergencies: read them, and note that it was seen when due."""
    device, found = device_emergencies(token_hash=token_hash)
    touch_device(device, telemetry)
    return device, found


def active_emergency_audio(session: Session, *, device: Device, sha256: str) -> bool:
    """Whether sha256 is the audio of an emergency on air now in the device's scope."""
    rows = session.execute(
        select(Emergency.village_ids).where(
            Emergency.audio_sha256 == sha256,
            Emergency.station_id == device.station_id,
            Emergency.cancelled_at.is_(None),
            Emergency.expires_at > clock.now(),
        )
    )
    return any(covers(villages, device.village_id) for (villages,) in rows)


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
        audio_sha256=asset.sha256,
        duration_ms=asset.duration_ms,
        created_by_id=actor.id if actor else None,
        created_at=now,
        expires_at=now + emergency_lifetime(asset.duration_ms),
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
    return emergency


def _emergency_snapshot(e: Emergency) -> dict[str, Any]:
    return {
        "station_id": e.station_id,
        "segment_id": e.segment_id,
        "village_ids": e.village_ids,
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
            cancelled_at=e.cancelled_at,
        )
        for e in emergencies
    ]


# --- as-run -------------------------------------------------------------------------------


def batch_events(body: Any) -> list[Any]:
    """The events of an as-run body: a JSON array, or an object {"events": [...]}."""
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        events: list[Any] = body["events"]
    elif isinstance(body, list):
        events = body
    else:
        raise Invalid('the body must be a JSON array of events or an object {"events": [...]}')
    if len(events) > MAX_BATCH:
        raise Invalid(f"at most {MAX_BATCH} events per batch; send the rest in another")
    return events


@dataclass(frozen=True)
class _Target:
    """What an event may have played: the audio it is allowed to name and its length."""

    kind: str  # "broadcast" or "emergency"
    id: int
    status: str | None
    current_sha: str | None
    audio: dict[str, int]  # sha256 -> duration_ms


def _broadcast_targets(
    session: Session, device: DeviceState, ids: set[int], wanted: set[tuple[int, str]]
) -> dict[int, _Target]:
    if not ids:
        return {}
    rows = session.execute(
        select(
            Broadcast.id, Broadcast.status, Broadcast.master_sha256, Broadcast.master_duration_ms
        ).where(
            Broadcast.id.in_(ids),
            Broadcast.station_id == device.station_id,
            Broadcast.village_id.is_(None)
            if device.village_id is None
            else Broadcast.village_id == device.village_id,
        )
    ).all()
    targets = {
        bid: _Target("broadcast", bid, status, sha, {sha: dur} if sha and dur is not None else {})
        for bid, status, sha, dur in rows
    }
    # A device may have played a master that was replaced since (the rundown changed after
    # it downloaded the playlist). Masters a broadcast had are in its audit trail.
    older = {(bid, sha) for bid, sha in wanted if bid in targets and sha not in targets[bid].audio}
    if older:
        previous: dict[int, set[str]] = defaultdict(set)
        for bid, after in session.execute(
            select(AuditEvent.entity_id, AuditEvent.after).where(
                AuditEvent.entity == "broadcast",
                AuditEvent.entity_id.in_({bid for bid, _ in older}),
                AuditEvent.action == "broadcast.assemble",
            )
        ):
            sha = (after or {}).get("master_sha256")
            if isinstance(sha, str) and bid is not None:
                previous[bid].add(sha)
        shas = {sha for bid, sha in older if sha in previous[bid]}
        if shas:
            durations = dict(
                session.execute(
                    select(AudioAsset.sha256, AudioAsset.duration_ms).where(
                        AudioAsset.sha256.in_(shas)
                    )
                )
                .tuples()
                .all()
            )
            for bid, sha in older:
                if sha in previous[bid] and sha in durations:
                    targets[bid].audio[sha] = durations[sha]
    return targets


def _emergency_targets(session: Session, device: DeviceState, ids: set[int]) -> dict[int, _Target]:
    if not ids:
        return {}
    rows = session.execute(
        select(
            Emergency.id, Emergency.village_ids, Emergency.audio_sha256, Emergency.duration_ms
        ).where(Emergency.id.in_(ids), Emergency.station_id == device.station_id)
    ).all()
    return {
        eid: _Target("emergency", eid, None, sha, {sha: dur})
        for eid, villages, sha, dur in rows
        if covers(villages, device.village_id)
    }


def _problem(
    event: AsRunEventIn, targets: dict[tuple[str, int], _Target], now: datetime
) -> str | None:
    if (event.broadcast_id is None) == (event.emergency_id is None):
        return "give exactly one of broadcast_id and emergency_id"
    if event.started_at >= event.ended_at:
        return "started_at must be before ended_at"
    if event.ended_at > now + MAX_FUTURE:
        return f"ended_at {event.ended_at.isoformat()} is in the future (now {now.isoformat()})"
    kind, ref = (
        ("broadcast", event.broadcast_id)
        if event.broadcast_id is not None
        else ("emergency", event.emergency_id)
    )
    target = targets.get((kind, ref or 0))
    if target is None:
        return f"{kind} {ref} is not in this device's scope"
    duration = target.audio.get(event.sha256)
    if duration is None:
        return f"sha256 {event.sha256[:12]}… is not the audio of {kind} {ref}"
    played = event.ended_at - event.started_at
    if played > timedelta(milliseconds=duration) + MAX_OVERRUN:
        return (
            f"played {played.total_seconds():.1f} s, longer than the {duration / 1000:.1f} s "
            f"audio by more than {MAX_OVERRUN.total_seconds():.0f} s"
        )
    return None


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert as-run rows, skipping event_ids already stored; the event_ids inserted."""
    if not rows:
        return set()
    # INSERT … ON CONFLICT DO NOTHING: a batch sent twice at once cannot fail on the key.
    if session.get_bind().dialect.name == "postgresql":
        pg = pg_insert(AsRunEvent).values(rows).on_conflict_do_nothing(index_elements=["event_id"])
        return set(session.scalars(pg.returning(AsRunEvent.event_id)))
    lite = (
        sqlite_insert(AsRunEvent).values(rows).on_conflict_do_nothing(index_elements=["event_id"])
    )
    return set(session.scalars(lite.returning(AsRunEvent.event_id)))


def record_as_run(
    session: Session, *, device: DeviceState, body: Any, telemetry: Telemetry
) -> AsRunResult:
    """Store a batch of as-run events: good ones kept, bad ones rejected one by one.

    Idempotent by event_id: a resent event is reported as a duplicate and changes nothing.
    A "played" event of a broadcast's current master marks the broadcast aired.
    """
    now = clock.now()
    events = batch_events(body)
    rejected: list[AsRunRejected] = []
    parsed: list[AsRunEventIn] = []
    for raw in events:
        raw_id = raw.get("event_id") if isinstance(raw, dict) else None
        try:
            parsed.append(AsRunEventIn.model_validate(raw))
        except ValidationError as exc:
            errors = [
                {k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()
            ]
            rejected.append(
                AsRunRejected(
                    event_id=raw_id if isinstance(raw_id, str) else None,
                    reason=describe_validation_errors(errors),
                )
            )
    # Resent events: ours are duplicates; another device's id is a clash.
    ids = {e.event_id for e in parsed}
    stored = (
        dict(
            session.execute(
                select(AsRunEvent.event_id, AsRunEvent.device_id).where(
                    AsRunEvent.event_id.in_(ids)
                )
            )
            .tuples()
            .all()
        )
        if ids
        else {}
    )
    targets = {
        ("broadcast", t.id): t
        for t in _broadcast_targets(
            session,
            device,
            {e.broadcast_id for e in parsed if e.broadcast_id is not None},
            {(e.broadcast_id, e.sha256) for e in parsed if e.broadcast_id is not None},
        ).values()
    }
    targets.update(
        (("emergency", t.id), t)
        for t in _emergency_targets(
            session, device, {e.emergency_id for e in parsed if e.emergency_id is not None}
        ).values()
    )
    duplicates: list[str] = []
    fresh: list[AsRunEventIn] = []
    seen: set[str] = set()
    for event in parsed:
        if event.event_id in seen or stored.get(event.event_id) == device.id:
            duplicates.append(event.event_id)
            continue
        seen.add(event.event_id)
        if event.event_id in stored:
            rejected.append(
                AsRunRejected(event_id=event.event_id, reason="event_id is taken by another device")
            )
            continue
        problem = _problem(event, targets, now)
        if problem is not None:
            rejected.append(AsRunRejected(event_id=event.event_id, reason=problem))
            continue
        fresh.append(event)
    inserted = _insert_new(
        session,
        [
            {
                "event_id": e.event_id,
                "device_id": device.id,
                "broadcast_id": e.broadcast_id,
                "emergency_id": e.emergency_id,
                "sha256": e.sha256,
                "started_at": e.started_at,
                "ended_at": e.ended_at,
                "status": e.status,
                "received_at": now,
            }
            for e in fresh
        ],
    )
    accepted = [e for e in fresh if e.event_id in inserted]
    # Lost a race with the same batch sent twice at once: the other request stored them.
    duplicates.extend(e.event_id for e in fresh if e.event_id not in inserted)
    _mark_aired(session, device=device, events=accepted, targets=targets, now=now)
    _record_played(session, device=device, events=accepted, telemetry=telemetry, now=now)
    return AsRunResult(
        accepted=[e.event_id for e in accepted], duplicates=duplicates, rejected=rejected
    )


def _mark_aired(
    session: Session,
    *,
    device: DeviceState,
    events: list[AsRunEventIn],
    targets: dict[tuple[str, int], _Target],
    now: datetime,
) -> None:
    # Aired means the broadcast as it stands was played: its current master, to the end.
    ids = set()
    for e in events:
        target = targets.get(("broadcast", e.broadcast_id or 0))
        if (
            e.status == "played"
            and target is not None
            and target.status in AIRABLE
            and target.current_sha == e.sha256
        ):
            ids.add(target.id)
    if not ids:
        return
    aired = session.scalars(
        update(Broadcast)
        # The status and master are checked again here: the row may have moved on since.
        .where(
            Broadcast.id.in_(ids),
            Broadcast.status.in_(AIRABLE),
            Broadcast.master_sha256.in_({targets[("broadcast", i)].current_sha for i in ids}),
        )
        .values(
            status=BroadcastStatus.aired.value,
            version=Broadcast.version + 1,
            updated_at=now,
        )
        .returning(Broadcast.id)
        .execution_options(synchronize_session=False)
    ).all()
    for bid in sorted(aired):
        audit.record(
            session,
            actor=None,
            actor_name=f"device {device.id}",
            action="broadcast.aired",
            entity="broadcast",
            entity_id=bid,
            after={"status": BroadcastStatus.aired.value},
        )


def _record_played(
    session: Session,
    *,
    device: DeviceState,
    events: list[AsRunEventIn],
    telemetry: Telemetry,
    now: datetime,
) -> None:
    values: dict[str, Any] = {"last_seen_at": now}
    if telemetry.agent_version is not None:
        values["agent_version"] = telemetry.agent_version
    if telemetry.free_disk_bytes is not None:
        values["free_disk_bytes"] = telemetry.free_disk_bytes
    played = [e.ended_at for e in events if e.status in ("played", "interrupted")]
    if played:
        latest = min(max(played), now)
        if device.last_played_at is None or latest > device.last_played_at:
            values["last_played_at"] = latest
    write_telemetry(session, device_id=device.id, values=values)
